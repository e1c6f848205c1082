"""Epoch-seeded sample order: the order of epoch e depends only on (seed, e), so a resumed run
replays exactly the batches an uninterrupted run would; sharded by rank under DDP."""
from __future__ import annotations

import math

import torch


class EpochSampler(torch.utils.data.Sampler):
    def __init__(self, n: int, seed: int = 0, shuffle: bool = True, num_samples: int | None = None, rank: int = 0,
                 world_size: int = 1):
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self.total = int(num_samples) if num_samples else n
        self.rank, self.world = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def indices(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order: list[int] = []
        while len(order) < self.total:
            order += torch.randperm(self.n, generator=g).tolist() if self.shuffle else list(range(self.n))
        order = order[: self.total]
        padded = math.ceil(self.total / self.world) * self.world  # every rank gets as many samples
        order += order[: padded - len(order)]
        return order[self.rank::self.world]

    def __iter__(self):
        return iter(self.indices())

    def __len__(self) -> int:
        return math.ceil(self.total / self.world)
