"""Small whole-input networks (the candidate scorer, the nodule classifier) saved as a .pt (state
dict + meta), an ONNX export and a .json sidecar beside it, so inference can run them on OpenVINO
without importing torch."""
from __future__ import annotations

import json
from pathlib import Path


def save_exported(model, path, meta: dict, in_shape, input_name: str = "patch") -> Path:
    import torch

    from ..io import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save({"state_dict": model.state_dict(), "meta": meta}, tmp)
    model.eval()
    with atomic_path(path.with_suffix(".onnx")) as tmp:
        torch.onnx.export(model, torch.zeros(1, *in_shape), str(tmp), input_names=[input_name],
                          output_names=["logit"], dynamic_axes={input_name: {0: "n"}, "logit": {0: "n"}},
                          dynamo=False, opset_version=17)
    with atomic_path(path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(meta, indent=2))
    return path


def load_state(path, build):
    """(torch model in eval mode, meta) from a .pt written by save_exported; build(meta) -> module."""
    import torch

    ckpt = torch.load(Path(path), map_location="cpu", weights_only=False)
    model = build(ckpt["meta"])
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), ckpt["meta"]
