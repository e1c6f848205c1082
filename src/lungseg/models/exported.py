"""Small whole-input networks (the candidate scorer, the nodule classifier) saved as a .pt (state
dict + meta), an ONNX export and a .json sidecar beside it, so inference can run them on OpenVINO
without importing torch."""
from __future__ import annotations

import json
from pathlib import Path


def round_to_half(model):
    """The model's floating-point weights rounded to fp16 and back, in place: stored as fp16 (half
    the size), its ONNX export and its torch load then hold exactly the same weights."""
    import torch

    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.copy_(t.half().float())
    return model


def save_exported(model, path, meta: dict, in_shape, input_name: str = "patch", half: bool = False) -> Path:
    """half: store the .pt's weights as fp16 (round_to_half them first; loading casts them back)."""
    import torch

    from ..io import atomic_path

    path = Path(path)
    state = model.state_dict()
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    with atomic_path(path) as tmp:
        torch.save({"state_dict": state, "meta": meta}, tmp)
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
