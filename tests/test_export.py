"""`lungseg export` and the OpenVINO runtime: same masks as PyTorch, stale exports refused."""
import subprocess
import sys

import numpy as np
import pytest
from conftest import dice

from lungseg.errors import LungsegError
from lungseg.inference.export import export_onnx, read_sidecar
from lungseg.inference.network import ModelSegmenter
from lungseg.inference.runtimes.openvino_runtime import openvino_export_for
from lungseg.io import CTImage

CLASSES = ["background", "right_lung", "left_lung"]


def _checkpoint(path, seed=0, input_size=(64, 64), context=0, classes=CLASSES):
    """A randomly initialised fast_unet saved as a lungseg checkpoint (project-made weights);
    context > 0: a 2.5D model that sees 2 * context neighbour slices as extra channels."""
    import torch

    from lungseg.models import build_model
    from lungseg.models.checkpoint import save_checkpoint

    torch.manual_seed(seed)
    channels = 2 * context + 1
    model = build_model("fast_unet", in_channels=channels, out_channels=len(classes))
    return save_checkpoint(path, {
        "model_name": "fast_unet", "model_kwargs": {"in_channels": channels, "out_channels": len(classes)},
        "spec": {"divisibility": 16},
        "preprocessing": {"dims": 2, "input_size": list(input_size) if input_size else None, "context_slices": context,
                          "intensity": {"mode": "window", "windows": ["lung"]}},
        "classes": list(classes), "epoch": 0, "metrics": {}, "state_dict": model.state_dict()})


def _ct(shape=(3, 80, 96)):
    rng = np.random.default_rng(0)
    arr = rng.normal(0, 60, shape).astype(np.float32)
    arr[:, 15:65, 10:44] -= 800
    arr[:, 15:65, 52:86] -= 800
    return CTImage.from_array(arr, spacing=(0.8, 0.8, 2.0))


@pytest.mark.parametrize("input_size", [(64, 64), None])
def test_openvino_probabilities_match_pytorch_fp32(tmp_path, input_size):
    ckpt = _checkpoint(tmp_path / "m.pt", input_size=input_size)
    export_onnx(ckpt)
    ov = ModelSegmenter.from_checkpoint(ckpt, runtime="auto")
    pt = ModelSegmenter.from_checkpoint(ckpt, runtime="torch", precision="fp32")
    assert (ov.runtime.name, pt.runtime.name) == ("openvino", "torch")
    ct = _ct()
    np.testing.assert_allclose(ov.predict_probabilities(ct), pt.predict_probabilities(ct), atol=1e-4)


def test_a_2_5d_model_sees_each_slice_with_its_neighbours_on_every_runtime(tmp_path):
    """Batches of 2 slices: the neighbours across a batch border and the repeated edge slices
    must be those training used (lungseg.data.preprocess.stack_context)."""
    import torch

    from lungseg.data.preprocess import window
    from lungseg.models import load_checkpoint

    ckpt = _checkpoint(tmp_path / "m.pt", input_size=None, context=1)
    export_onnx(ckpt, resize=False)
    ct = _ct(shape=(5, 64, 80))
    model, _ = load_checkpoint(ckpt)
    x = window(ct.array, -600.0, 1500.0)
    expected = []
    for z in range(5):
        stack = np.stack([x[max(z - 1, 0)], x[z], x[min(z + 1, 4)]])[None]
        with torch.inference_mode():
            expected.append(torch.softmax(model(torch.from_numpy(stack)), 1)[0].numpy())
    expected = np.stack(expected, axis=1)
    for runtime in ("torch", "openvino"):
        seg = ModelSegmenter.from_checkpoint(ckpt, runtime=runtime, resize=False, batch_size=2)
        assert seg.runtime.name == runtime and seg.context == 1
        np.testing.assert_allclose(seg.predict_probabilities(ct), expected, atol=1e-4)


def test_graph_without_upsampling_gives_the_same_labels(tmp_path):
    """The lung graph ends at 64x64 here; lungseg.inference.upsample takes the labels back to 80x96."""
    ckpt = _checkpoint(tmp_path / "m.pt")
    export_onnx(ckpt, upsample=False)
    ov = ModelSegmenter.from_checkpoint(ckpt)
    assert ov.runtime.name == "openvino" and not ov.runtime.graph_upsamples
    pt = ModelSegmenter.from_checkpoint(ckpt, runtime="torch", precision="fp32")
    ct = _ct()
    np.testing.assert_allclose(ov.predict_probabilities(ct), pt.predict_probabilities(ct), atol=1e-4)
    a, b = ov(ct, postprocess=False), pt(ct, postprocess=False)
    assert (a.labels != b.labels).mean() < 1e-4
    assert (a.low_confidence != b.low_confidence).mean() < 0.02  # nearest- vs bilinear-upsampled band


def test_openvino_tta_swaps_the_lungs_back(tmp_path):
    ckpt = _checkpoint(tmp_path / "m.pt")
    export_onnx(ckpt)
    ct = _ct()
    ov = ModelSegmenter.from_checkpoint(ckpt, tta=True).predict_probabilities(ct)
    pt = ModelSegmenter.from_checkpoint(ckpt, runtime="torch", precision="fp32", tta=True).predict_probabilities(ct)
    np.testing.assert_allclose(ov, pt, atol=1e-4)


def test_nodule_tta_averages_every_in_plane_mirroring(tmp_path):
    """A model without sides (the nodule model) averages the four in-plane mirrorings on either
    runtime, so its output mirrors exactly with its input; a random network alone does not."""
    ckpt = _checkpoint(tmp_path / "n.pt", input_size=None, context=2, classes=["background", "nodule"])
    export_onnx(ckpt, resize=False)
    ct = _ct((5, 64, 80))
    mirrored = CTImage.from_array(ct.array[:, ::-1].copy(), spacing=ct.spacing)  # up/down
    ov = ModelSegmenter.from_checkpoint(ckpt, tta=True)
    pt = ModelSegmenter.from_checkpoint(ckpt, runtime="torch", precision="fp32", tta=True)
    assert ov.runtime.name == "openvino" and ov.tta_mirrors() == ((-1,), (-2,), (-2, -1))
    p = ov.predict_probabilities(ct)
    np.testing.assert_allclose(p, pt.predict_probabilities(ct), atol=1e-4)
    np.testing.assert_allclose(ov.predict_probabilities(mirrored)[:, :, ::-1], p, atol=1e-4)
    plain = ModelSegmenter.from_checkpoint(ckpt)
    assert np.abs(plain.predict_probabilities(mirrored)[:, :, ::-1] - plain.predict_probabilities(ct)).max() > 1e-3


def test_stale_export_falls_back_to_torch_or_fails_clearly(tmp_path):
    ckpt = _checkpoint(tmp_path / "m.pt")
    export_onnx(ckpt)
    _checkpoint(ckpt, seed=1)  # new weights, old export
    assert read_sidecar(tmp_path / "m.onnx")["source_checkpoint"] == "m.pt"
    assert openvino_export_for(ckpt) is None
    assert ModelSegmenter.from_checkpoint(ckpt).runtime.name == "torch"
    with pytest.raises(LungsegError, match="exported from other weights"):
        ModelSegmenter.from_checkpoint(ckpt, runtime="openvino")


def test_export_without_resize_is_refused_where_resizing_is_needed(tmp_path):
    ckpt = _checkpoint(tmp_path / "m.pt")
    export_onnx(ckpt, resize=False)
    with pytest.raises(LungsegError, match="does not resize"):
        ModelSegmenter.from_checkpoint(ckpt, runtime="openvino")
    assert ModelSegmenter.from_checkpoint(ckpt, runtime="openvino", resize=False).input_size is None


def test_cli_export_then_segment_on_openvino(tmp_path):
    from lungseg.io import read_labels, write_image

    ckpt = _checkpoint(tmp_path / "m.pt")
    scan = tmp_path / "ct.nii.gz"
    write_image(_ct(), scan)
    run = lambda *a: subprocess.run([sys.executable, "-m", "lungseg", *map(str, a)], capture_output=True, text=True,
                                    timeout=300)
    r = run("segment", scan, "-o", tmp_path / "ov.nii.gz", "--model", ckpt, "--runtime", "openvino")
    assert r.returncode == 2 and "lungseg export" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "ov.nii.gz").exists()
    r = run("export", ckpt)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "m.onnx").exists() and (tmp_path / "m.json").exists()
    for runtime in ("openvino", "torch"):
        r = run("segment", scan, "-o", tmp_path / f"{runtime}.nii.gz", "--model", ckpt, "--runtime", runtime,
                "--no-postprocess", "--quiet")
        assert r.returncode == 0, r.stderr
    a, b = (read_labels(tmp_path / f"{n}.nii.gz").array for n in ("openvino", "torch"))
    for side in (1, 2):
        assert dice(a == side, b == side) >= 0.999


def test_export_refuses_3d_models(tmp_path):
    import torch

    from lungseg.models import build_model
    from lungseg.models.checkpoint import save_checkpoint

    model = build_model("fast_unet", spatial_dims=3, in_channels=1, out_channels=3, channels=[4, 8], strides=[2])
    ckpt = save_checkpoint(tmp_path / "m3.pt", {
        "model_name": "fast_unet", "model_kwargs": {"spatial_dims": 3, "in_channels": 1, "out_channels": 3,
                                                    "channels": [4, 8], "strides": [2]},
        "preprocessing": {"dims": 3, "intensity": {"mode": "window", "windows": ["lung"]}}, "classes": CLASSES,
        "state_dict": model.state_dict()})
    with pytest.raises(LungsegError, match="only 2D"):
        export_onnx(ckpt)
    del torch


def test_one_openvino_segmenter_serves_several_threads(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    ckpt = _checkpoint(tmp_path / "m.pt")
    export_onnx(ckpt)
    seg = ModelSegmenter.from_checkpoint(ckpt)
    cts = [_ct(), CTImage.from_array(_ct().array[:, ::-1].copy(), spacing=(0.8, 0.8, 2.0))] * 3
    alone = [seg.predict_probabilities(ct) for ct in cts]
    with ThreadPoolExecutor(3) as pool:
        together = list(pool.map(seg.predict_probabilities, cts))
    for a, b in zip(alone, together):
        np.testing.assert_array_equal(a, b)
