"""`lungseg compare A.yaml B.yaml ...`: train or reuse models on the same data and budget, one table."""
from __future__ import annotations

import sys

EPILOG = """\
Fairness: the data section of the FIRST config (sources, split, slices per epoch, validation
subset) and its seed are applied to every config; each keeps its classes, 2D/3D, input size,
intensity and batch size, and its architecture, loss, optimiser, augmentation and early stopping.
Every model trains the same number of epochs (--epochs, else the first config's); with
--budget-minutes each gets the same wall-clock budget (epochs projected from the first epoch).

All models are scored on the same validation (and test, when the split has one) cases, each on
the classes it shares with the references: a [background, lung] model on both lungs, a right/left
model also per side, a nodule model also on nodules (with lesion recall). Inference time is the
median over 3 runs, after a warm-up, on the same slices, bf16 where the hardware has it;
training minutes are the epochs' training + validation time (building the data left out).
Outputs in DIR: compare.csv, compare.json, per_case.csv, compare.png and one run folder per config.

Classification configs (task: classification, e.g. configs/classifier_*.yaml): each malignancy
classifier trains (lungseg.train.train) into DIR/<name> (--reuse: where DIR/<name>/metrics.json
exists) on the first config's data section and seed; --epochs sets every network's epochs (default:
each config's own) and --set applies as above. One table: parameters, training minutes, ms per
nodule, validation AUC [95% CI], accuracy/sensitivity/specificity at each model's threshold and the
size-only AUC on the same nodules; compare.csv and compare.json. --budget-minutes is for
segmentation only; --n-boot, --seed, --timing-slices, --device and --no-plot do not apply. All
configs must be of one task.
"""


def add_parser(subparsers):
    import argparse

    p = subparsers.add_parser("compare", help="train and compare several model configs on the same data",
                              description="Train (or reuse) each config's model under the same data, split and "
                                          "budget, evaluate all on the same cases and print one table: parameters, "
                                          "training minutes, ms per slice, Dice, IoU, HD95 and nodule recall with "
                                          "95% CIs.",
                              epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("configs", nargs="+", help="experiment YAML files (the first one's data section is used for all)")
    p.add_argument("-o", "--out", default="runs/compare", help="output folder (default: runs/compare)")
    p.add_argument("--epochs", type=int, help="epochs for every model (default: the first config's)")
    p.add_argument("--budget-minutes", type=float, metavar="M", help="wall-clock training budget per model")
    p.add_argument("--reuse", action="store_true",
                   help="skip training where DIR/<name>/best.pt (classifiers: metrics.json) exists")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a value in every config, e.g. --set data.samples_per_epoch=64 (repeatable)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="inference device")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the CIs (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--timing-slices", type=int, default=16, metavar="N", help="slices timed per model (default 16)")
    p.add_argument("--threads", type=int, metavar="N", help="CPU inference threads (default: all cores)")
    p.add_argument("--no-plot", action="store_true", help="skip compare.png")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..classification.compare import load_configs, task_of
    from ..compare import compare, format_table
    from ..errors import LungsegError

    cfgs = load_configs(args.configs, args.overrides)
    if task_of(cfgs, args.configs) == "classification":
        return _run_classification(args, cfgs)
    if args.n_boot < 0:
        raise LungsegError("--n-boot must be >= 0")
    if args.timing_slices < 1:
        raise LungsegError("--timing-slices must be >= 1")
    if args.threads is not None and args.threads < 1:
        raise LungsegError("--threads must be >= 1")
    result = compare(args.configs, args.out, epochs=args.epochs, budget_minutes=args.budget_minutes,
                     reuse=args.reuse, overrides=args.overrides, device=args.device, n_boot=args.n_boot,
                     seed=args.seed, timing_slices=args.timing_slices, threads=args.threads, plot=not args.no_plot,
                     log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(format_table(result))
    print(f"written: {args.out}/compare.csv, compare.json, per_case.csv" + ("" if args.no_plot else ", compare.png"))
    return 0


def _run_classification(args, cfgs) -> int:
    from ..classification.compare import compare_classifiers, format_table
    from ..errors import LungsegError

    if args.budget_minutes is not None:
        raise LungsegError("--budget-minutes is for segmentation configs; give classifiers --epochs instead")
    if args.threads is not None and args.threads < 1:
        raise LungsegError("--threads must be >= 1")
    result = compare_classifiers(args.configs, args.out, epochs=args.epochs, reuse=args.reuse,
                                 overrides=args.overrides, threads=args.threads, cfgs=cfgs,
                                 log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(format_table(result))
    print(f"written: {args.out}/compare.csv, compare.json")
    return 0
