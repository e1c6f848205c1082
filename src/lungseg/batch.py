"""Batch runs over a folder of scans: deterministic shards for cluster array jobs (as nnU-Net's
-num_parts/-part_id), and a CSV log per run that stays valid when the job is killed."""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import LungsegError
from .io import atomic_path

BATCH_LOG = "lungseg_batch.csv"
LOG_COLUMNS = ("case", "status", "seconds", "error")


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> "Shard":
        m = re.fullmatch(r"\s*([0-9]+)\s*/\s*([0-9]+)\s*", text)
        if not m or not 0 <= int(m[1]) < int(m[2]):
            raise LungsegError(f"--shard must be I/N with 0 <= I < N (e.g. 0/4), got '{text}'")
        return cls(int(m[1]), int(m[2]))

    def select(self, cases: list[Path]) -> list[Path]:
        """Every N-th case of the name-sorted list from the I-th on: fixed by the names alone, never
        by timing or by which outputs exist, so the N shards are disjoint and cover the folder."""
        return sorted(cases, key=lambda p: p.name)[self.index::self.count]

    @property
    def log_name(self) -> str:
        return f"lungseg_shard_{self.index}_of_{self.count}.csv"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


class BatchLog:
    """One row per case (case, status ok|skipped|failed, seconds, error). The whole file is
    rewritten atomically after every case: a killed job leaves a valid CSV of the cases done."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.rows: list[tuple[str, str, str, str]] = []
        self._write()  # an empty shard still leaves its (header-only) log

    def add(self, case: str, status: str, seconds: float, error: str = "") -> None:
        self.rows.append((case, status, f"{seconds:.2f}", " ".join(error.split())))  # one line per row
        self._write()

    def count(self, status: str) -> int:
        return sum(row[1] == status for row in self.rows)

    def _write(self) -> None:
        with atomic_path(self.path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(LOG_COLUMNS)
            writer.writerows(self.rows)
