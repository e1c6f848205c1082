"""Training engine: `train(config) -> TrainResult`, `load_config(path)`; DDP via torchrun.

Torch is imported when train() runs, so `lungseg --help` stays fast."""
from .config import TrainConfig, load_config


def train(config, resume: bool = False, output_dir=None):
    """See lungseg.train.engine.train."""
    from .engine import train as _train

    return _train(config, resume=resume, output_dir=output_dir)


__all__ = ["TrainConfig", "load_config", "train"]
