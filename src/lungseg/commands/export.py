"""`lungseg export MODEL.pt`: write an ONNX graph (+ JSON sidecar) that `lungseg segment`
then runs on OpenVINO, without torch, when it lies beside the checkpoint."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a 2D checkpoint to ONNX for the fast CPU runtime (OpenVINO)",
                       description="Export a 2D lungseg checkpoint to ONNX (resize, network and softmax in one "
                                   "graph). Put the .onnx beside the .pt and `lungseg segment --model` uses it.")
    p.add_argument("checkpoint", help="lungseg checkpoint (.pt)")
    p.add_argument("-o", "--output", help="ONNX file (default: the checkpoint's name with .onnx)")
    p.add_argument("--no-resize", action="store_true",
                   help="leave resizing out of the graph (models run on native-size crops, like the nodule model)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..inference.export import export_onnx

    out = export_onnx(Path(args.checkpoint), args.output, resize=not args.no_resize)
    print(f"wrote {out} and {out.with_suffix('.json').name}")
    return 0
