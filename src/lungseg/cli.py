"""The `lungseg` command. Thin: each subcommand lives in lungseg/commands/<name>.py with
`add_parser(subparsers)` and `run(args) -> int`; heavy imports happen inside run()."""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys

from .errors import LungsegError

COMMANDS = ["segment", "synth", "train", "evaluate", "compare", "serve", "export"]


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="lungseg", description="Lung (right/left) and nodule segmentation of chest CT.")
    parser.add_argument("--version", action="version", version=f"lungseg {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        modname = f"lungseg.commands.{name}"
        if importlib.util.find_spec(modname) is None:
            continue
        importlib.import_module(modname).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except LungsegError as e:
        if args.debug:
            raise
        print(f"lungseg: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lungseg: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # never show a traceback to a user who did not ask for one
        if args.debug or os.environ.get("LUNGSEG_DEBUG"):
            raise
        print(f"lungseg: error: unexpected {type(e).__name__}: {e} (rerun with --debug for details)", file=sys.stderr)
        return 1


def run() -> None:
    """The console command: main(), then exit without the interpreter's teardown. A one-shot run
    ends holding ~1.5 GB of arrays and a compiled inference engine, and freeing them one by one
    takes ~0.2 s of a ~6 s segmentation (benchmarks/speed.py); every output is closed (written to
    a temporary name and renamed) by then, so only the standard streams need flushing."""
    import logging

    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
