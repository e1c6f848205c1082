"""Training engine: `train(config) -> TrainResult`, `load_config(path)`; DDP via torchrun.

Torch is imported when train() runs, so `lungseg --help` stays fast."""
from .config import TrainConfig, load_config


def train(config, resume: bool = False, output_dir=None):
    """See lungseg.train.engine.train (segmentation) and lungseg.classification.train."""
    cfg = load_config(config) if not isinstance(config, TrainConfig) else config
    if cfg.task == "classification":
        from ..classification.train import train_classifier

        return train_classifier(cfg, output_dir=output_dir)
    from .engine import train as _train

    return _train(cfg, resume=resume, output_dir=output_dir)


__all__ = ["TrainConfig", "load_config", "train"]
