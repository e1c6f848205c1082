"""`lungseg train CONFIG.yaml`: train a segmentation model from a YAML experiment file."""
from __future__ import annotations


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a segmentation model from a YAML config",
        description="Train a model described by a YAML config (see configs/). Multi-process: "
                    "torchrun --nproc_per_node=N -m lungseg train CONFIG.")
    p.add_argument("config", nargs="?", help="experiment YAML file, e.g. configs/fast_unet_synthetic.yaml")
    p.add_argument("--output", "-o", help="run folder (default: output_dir from the config, else runs/<name>)")
    p.add_argument("--resume", action="store_true", help="continue from <run folder>/last.pt if it exists")
    p.add_argument("--epochs", type=int, help="override the number of epochs (single-phase configs)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set optim.lr=1e-4 (repeatable)")
    p.add_argument("--list-models", action="store_true", help="print the available architectures (segmenters and classifiers) and exit")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.list_models:
        from ..models import list_models, model_spec

        for name in list_models():
            print(f"{name:22s} {model_spec(name).description}")
        from ..classification.networks import CLASSIFIERS

        print("\nmalignancy classifiers (task: classification):")
        for name, spec in CLASSIFIERS.items():
            print(f"{name:22s} {spec.description}")
        return 0
    if not args.config:
        from ..errors import LungsegError

        raise LungsegError("lungseg train needs a config file (see configs/)")
    from ..train import load_config, train

    overrides = list(args.overrides)
    if args.epochs is not None:
        overrides.append(f"epochs={args.epochs}")
    cfg = load_config(args.config, overrides)
    if args.epochs is not None and cfg.phases:
        from ..errors import LungsegError

        raise LungsegError("this config trains in phases; change the phases' epochs instead of --epochs")
    result = train(cfg, resume=args.resume, output_dir=args.output)
    if result.best_checkpoint is not None:
        print(f"best {cfg.monitor} {result.best_metric:.4f} at epoch {result.best_epoch}: {result.best_checkpoint}")
    return 0
