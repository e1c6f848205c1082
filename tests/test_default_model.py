"""The shipped default models: loading, accuracy on the bundled sample, determinism, image mode,
nodules only inside lungs, and reproducible retraining."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import dice

from lungseg.inference.pipeline import LUNG_HU, NODULE, DefaultSegmenter
from lungseg.inference.network import ModelSegmenter
from lungseg.inference.upsample import winners_at_slice_size
from lungseg.inference.runtimes.openvino_runtime import openvino_export_for
from lungseg.io import CTImage
from lungseg.inference.candidates import NoduleSegmenter

needs_weights = pytest.mark.skipif(not LUNG_HU.exists(), reason="no default weights in src/lungseg/weights")


@pytest.fixture(scope="module")
def default():
    return DefaultSegmenter()


@needs_weights
def test_weights_are_small_and_load(default):
    total = sum(p.stat().st_size for p in LUNG_HU.parent.iterdir() if p.suffix in (".pt", ".onnx", ".json"))
    assert total <= 30 * 1024**2
    assert default.lung_hu.classes == ["background", "right_lung", "left_lung"]
    assert default.lung_hu.requires_hu


@needs_weights
def test_shipped_onnx_exports_match_the_weights_and_run_on_openvino(default):
    """The fast CPU path: exports of exactly the shipped .pt files, lungs resized inside the
    graph, the nodule model on native-size crops."""
    assert openvino_export_for(LUNG_HU, required=True).exists()
    assert openvino_export_for(NODULE, resize=False, required=True).exists()
    assert default.lung_hu.runtime.name == "openvino" and default.nodule.segmenter.runtime.name == "openvino"


@needs_weights
def test_openvino_masks_equal_pytorch_fp32(default, sample_ct):
    torch_fp32 = ModelSegmenter.from_checkpoint(LUNG_HU, runtime="torch", precision="fp32")
    assert torch_fp32.runtime.name == "torch"
    a, b = default.lung_hu(sample_ct).labels, torch_fp32(sample_ct).labels
    for side in (1, 2):
        assert dice(a == side, b == side) >= 0.999


@needs_weights
def test_lung_network_split_over_two_streams_equals_single_requests(default):
    seg = default.lung_hu
    assert seg.runtime.streams == 2 and default.nodule.segmenter.runtime.streams == 1
    x = np.random.default_rng(0).random((3, 2, 512, 512), dtype=np.float32)  # an odd batch: halves of 2 and 1
    run = seg.runtime._run
    single = np.concatenate([run(x[i:i + 1]) for i in range(3)])  # a batch of 1 takes one request
    np.testing.assert_allclose(run(x), single, atol=1e-5)


@needs_weights
def test_lung_batches_run_ahead_of_their_use_with_the_same_results(sample_ct):
    """OpenVINO runs batch k + 1 while batch k is upsampled: same outputs, same order."""
    seg = ModelSegmenter.from_checkpoint(LUNG_HU, batch_size=6)  # 79 slices: 14 batches, the last short
    ahead = list(seg._iter_outputs(sample_ct, keep=False))
    ov = seg.runtime
    one_by_one = [(start,) + winners_at_slice_size(ov._graph_probabilities(x, seg.mirroring), x.shape[-2:], True)
                  for start, x in seg.iter_inputs(sample_ct)]
    assert [a[0] for a in ahead] == [b[0] for b in one_by_one] == list(range(0, 79, 6))
    for a, b in zip(ahead, one_by_one):
        np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_array_equal(a[2], b[2])


@needs_weights
def test_tta_reaches_the_nodule_network_too():
    """--tta: the lungs with their left/right mirror only (sides swap back), the nodules with
    every in-plane mirroring; without it, one plain pass each."""
    seg = DefaultSegmenter(tta=True)
    assert seg.lung_hu.tta_mirrors() == ((-1,),)
    assert seg.nodule.segmenter.tta_mirrors() == ((-1,), (-2,), (-2, -1))
    plain = DefaultSegmenter()
    assert plain.lung_hu.tta_mirrors() == () and plain.nodule.segmenter.tta_mirrors() == ()


@needs_weights
def test_sample_lungs_match_reference_and_sides(default, sample_ct, sample_lung_mask):
    """The bundled CIP case is validation data for the default model (never trained on)."""
    labels = default(sample_ct).labels
    assert dice(np.isin(labels, (1, 2, 3)), sample_lung_mask) >= 0.93
    right = sample_ct.left_coordinate(np.argwhere(labels == 1)).mean()
    left = sample_ct.left_coordinate(np.argwhere(labels == 2)).mean()
    assert right < 0 < left


@needs_weights
def test_inference_is_deterministic(default, sample_ct):
    np.testing.assert_array_equal(default(sample_ct).labels, default(sample_ct).labels)


@needs_weights
def test_low_confidence_map_is_optional_and_changes_nothing_else(default, sample_ct):
    """`lungseg segment` without --preview skips the map (a scan-sized array nobody looks at)."""
    with_map = default(sample_ct)
    without = DefaultSegmenter(low_confidence=False)(sample_ct)
    assert without.low_confidence is None
    assert with_map.low_confidence.shape == sample_ct.shape and with_map.low_confidence.any()
    np.testing.assert_array_equal(without.labels, with_map.labels)


@needs_weights
def test_compiled_networks_are_cached_on_disk_and_give_the_same_masks(tmp_path):
    from lungseg.samples import SAMPLE_CT

    script = "import sys, numpy as np; from lungseg.api import segment; np.save(sys.argv[1], segment(sys.argv[2]).labels)"
    masks = []
    for run, cache in (("off", "off"), ("first", tmp_path / "cache"), ("cached", tmp_path / "cache")):
        env = {**os.environ, "LUNGSEG_CACHE_DIR": str(cache)}
        subprocess.run([sys.executable, "-c", script, tmp_path / f"{run}.npy", SAMPLE_CT], env=env, check=True)
        masks.append(np.load(tmp_path / f"{run}.npy"))
        if run == "first":
            assert len(list((tmp_path / "cache").glob("*.blob"))) == 2  # lungs and nodules
    assert not (tmp_path / "off").exists()
    np.testing.assert_array_equal(masks[0], masks[1])
    np.testing.assert_array_equal(masks[0], masks[2])


@needs_weights
def test_image_mode_picture_uses_the_image_model(default, sample_ct, sample_lung_mask):
    if default.lung_image is None:
        pytest.skip("no image-mode model shipped")
    k = int(np.argmax(sample_lung_mask.sum(axis=(1, 2))))
    pic = np.clip((sample_ct.array[k] + 1000) / 1400 * 255, 0, 255).astype(np.uint8)
    out = default(CTImage.from_array(pic, is_hu=False))
    assert out.labels.shape == (1, 64, 64)
    assert dice(out.labels[0] > 0, sample_lung_mask[k]) >= 0.85
    assert set(np.unique(out.labels)) <= {0, 1, 2}


class BrightIsNodule(torch.nn.Module):
    """Fake nodule model: anything brighter than -400 HU in the lung window is 'nodule'."""

    def forward(self, x):
        score = (x[:, :1] - 0.4) * 40  # lung window: -400 HU -> 0.63; -850 HU -> 0.33
        return torch.cat([-score, score], dim=1)


def test_nodules_are_searched_only_in_and_against_the_lungs():
    arr = np.full((20, 64, 64), 40.0, np.float32)  # soft tissue everywhere
    lungs = np.zeros(arr.shape, np.uint8)
    lungs[2:18, 10:50, 5:28] = 1
    lungs[2:18, 10:50, 36:60] = 2
    arr[lungs > 0] = -850
    z, y, x = np.mgrid[:20, :64, :64]
    arr[(z - 9) ** 2 + (y - 30) ** 2 + (x - 15) ** 2 <= 9] = 30  # a nodule in the right lung
    ct = CTImage.from_array(arr, spacing=(0.7, 0.7, 1.0))
    meta = {"preprocessing": {"dims": 2, "input_size": [128, 128], "intensity": {"mode": "window", "windows": ["lung"]}},
            "classes": ["background", "nodule"], "spec": {"divisibility": 16}, "display_name": "fake"}
    finder = NoduleSegmenter(ModelSegmenter(BrightIsNodule(), meta, precision="fp32"))
    found = finder(ct, lungs)
    assert found[9, 30, 15]  # the nodule
    assert not found[:, 58:, :].any()  # soft tissue far from the lungs is never searched
    assert not found[0].any() and not found[19].any()  # slices without lung are skipped


class GradedNodule(torch.nn.Module):
    """Fake nodule model whose probability rises with density: lung (-850 HU) ~0.02, ground glass
    (-650 HU) ~0.4, solid tissue ~1 (lung window v = (HU + 1350) / 1500)."""

    def forward(self, x):
        score = (x[:, :1] - 0.482) * 13
        return torch.cat([-score, score], dim=1)


def test_a_faint_nodule_becomes_a_candidate_below_the_outline_threshold_and_is_drawn_whole():
    """Candidates start at the voxel threshold (0.3 ships), so a ground-glass nodule the network
    gives ~0.4 is proposed; a listed finding is drawn at the outline threshold (0.5) where it has
    a core of nodule size there, else whole."""
    arr = np.full((20, 64, 64), 40.0, np.float32)
    lungs = np.zeros(arr.shape, np.uint8)
    lungs[2:18, 10:50, 5:28] = 1
    lungs[2:18, 10:50, 36:60] = 2
    arr[lungs > 0] = -850
    z, y, x = np.mgrid[:20, :64, :64]
    r2_right, r2_left = (z - 9) ** 2 + (y - 30) ** 2 + (x - 16) ** 2, (z - 9) ** 2 + (y - 30) ** 2 + (x - 48) ** 2
    arr[r2_right <= 25] = -650  # a part-solid nodule: ground-glass rim ...
    arr[r2_right <= 9] = 30  # ... around a solid core
    arr[r2_left <= 16] = -650  # a pure ground-glass nodule
    ct = CTImage.from_array(arr, spacing=(0.7, 0.7, 1.0))
    meta = {"preprocessing": {"dims": 2, "input_size": [128, 128], "intensity": {"mode": "window", "windows": ["lung"]}},
            "classes": ["background", "nodule"], "spec": {"divisibility": 16}, "display_name": "fake"}

    def finder(**kw):
        return NoduleSegmenter(ModelSegmenter(GradedNodule(), meta, precision="fp32"), min_mean_probability=0.3, **kw)

    at_half = finder()(ct, lungs)
    assert at_half[r2_right <= 9].all() and not at_half[r2_left <= 16].any()  # the ground glass is missed
    found = finder(threshold=0.3, outline=0.5)(ct, lungs)
    assert dice(found[:, :, 32:], r2_left[:, :, 32:] <= 16) >= 0.9  # proposed, and drawn whole
    assert dice(found[:, :, :32], at_half[:, :, :32]) == 1.0  # the part-solid one: drawn at 0.5 as before
    assert found[:, :, :32].sum() < (r2_right <= 25).sum() / 2  # not its whole 0.3 candidate


class SoftTissueIsNodule(torch.nn.Module):
    """Fake nodule model that marks all soft tissue (lung window ~0.85-0.97: 0..100 HU) as
    nodule, the mediastinum included, but not bone-bright chest wall (clipped to 1)."""

    def forward(self, x):
        v = x[:, :1]
        score = torch.minimum(v - 0.85, 0.97 - v) * 200
        return torch.cat([-score, score], dim=1)


def test_a_central_tumour_stays_one_candidate_inside_the_lungs_not_merged_with_the_mediastinum():
    """A tumour against the mediastinum, counted as lung by the lung model (R231 convention): a
    nodule network that also marks the mediastinum joins the two in one region, mostly outside
    the lungs, which the in-lung rule drops. Cut to the lung mask grown by 3 mm, the tumour is one
    candidate, nearly all inside the lungs, with at most a 3 mm rim of mediastinum."""
    arr = np.full((20, 64, 64), 200.0, np.float32)  # chest wall, bone-bright
    lungs = np.zeros(arr.shape, np.uint8)
    lungs[2:18, 10:50, 5:28] = 1
    lungs[2:18, 10:50, 44:60] = 2
    arr[lungs > 0] = -850
    arr[:, 8:52, 28:44] = 130  # mediastinum (enhanced vessels, heart), 16 px = 11 mm wide
    z, y, x = np.mgrid[:20, :64, :64]
    tumour = ((z - 9) ** 2 + (y - 30) ** 2 + (x - 22) ** 2 <= 36) & (lungs == 1)  # in the lung mask
    arr[tumour] = 35
    arr[4:15, 24:38, 28:36] = 35  # where it grows on into the mediastinum (not lung)
    ct = CTImage.from_array(arr, spacing=(0.7, 0.7, 1.0))
    meta = {"preprocessing": {"dims": 2, "input_size": [128, 128], "intensity": {"mode": "window", "windows": ["lung"]}},
            "classes": ["background", "nodule"], "spec": {"divisibility": 16}, "display_name": "fake"}

    def finder(**kw):
        return NoduleSegmenter(ModelSegmenter(SoftTissueIsNodule(), meta, precision="fp32"), **kw)

    def tumour_candidate(found):
        in_tumour = tumour[found.box][found.coords]
        k = int(np.bincount(found.ids, weights=in_tumour).argmax())
        return k, int((found.ids == k).sum()), int(in_tumour[found.ids == k].sum())

    merged = finder().find_candidates(ct, lungs)
    k, size, hit = tumour_candidate(merged)
    assert hit == tumour.sum() and merged.inside[k] < 0.5  # joined to the mediastinum: dropped
    cut = finder(lung_margin_mm=3.0).find_candidates(ct, lungs)
    k, size, hit = tumour_candidate(cut)
    assert hit == tumour.sum() and cut.inside[k] >= 0.5
    assert size - hit <= 11 * 14 * 4  # of the mediastinal part only what lies within 3 mm (4 px) of the lung


def test_retraining_is_reproducible(tmp_path):
    """Same config and seed -> the same weights on CPU (what `make weights` relies on)."""
    from test_train import tiny

    from lungseg.train import train

    a = train(tiny(tmp_path / "a", epochs=2)).best_checkpoint
    b = train(tiny(tmp_path / "b", epochs=2)).best_checkpoint
    sa = torch.load(a, weights_only=True)["state_dict"]
    sb = torch.load(b, weights_only=True)["state_dict"]
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_fine_tuning_starts_from_the_given_checkpoint(tmp_path):
    """model.init_from loads a trained checkpoint; with lr 0 its parameters stay exactly as given."""
    from test_train import tiny

    from lungseg.models import build_model
    from lungseg.train import train

    first = train(tiny(tmp_path / "a")).best_checkpoint
    cfg = tiny(tmp_path / "b", **{"model.init_from": str(first), "optim.lr": 0.0})
    second = train(cfg).best_checkpoint
    a = torch.load(first, weights_only=True)["state_dict"]
    b = torch.load(second, weights_only=True)["state_dict"]
    params = dict(build_model("fast_unet", channels=[8, 16, 32], num_res_units=1).named_parameters())
    for name in params:
        assert torch.equal(a[name], b[name]), name


class ShapeRecorder(BrightIsNodule):
    def __init__(self):
        super().__init__()
        self.shapes = []

    def forward(self, x):
        self.shapes.append(tuple(x.shape[-2:]))
        return super().forward(x)


def test_nodule_network_sees_only_each_batch_of_slices_lung_box():
    """Apex slices hold little lung: their batch runs on a small box, and a nodule there is
    still found (the box follows the lungs, slice batch by slice batch)."""
    arr = np.full((8, 96, 96), 40.0, np.float32)
    lungs = np.zeros(arr.shape, np.uint8)
    lungs[:4, 40:56, 20:36] = 1  # apex: a small lung
    lungs[4:, 10:90, 5:35] = 1
    lungs[4:, 10:90, 60:92] = 2
    arr[lungs > 0] = -850
    arr[1:3, 46:49, 26:29] = 30  # a nodule in the apex
    ct = CTImage.from_array(arr, spacing=(0.7, 0.7, 1.0))
    meta = {"preprocessing": {"dims": 2, "input_size": None, "intensity": {"mode": "window", "windows": ["lung"]}},
            "classes": ["background", "nodule"], "spec": {"divisibility": 16}, "display_name": "fake"}
    net = ShapeRecorder()
    finder = NoduleSegmenter(ModelSegmenter(net, meta, precision="fp32", batch_size=4))
    found = finder(ct, lungs)
    assert found[1:3, 46:49, 26:29].all() and found.sum() == 18
    # 16 px of lung + 2 x 8 margin -> 32 x 32; below the apex each lung gets its own window
    # (80 + 16 rows -> 94 in the box, padded to 96; 30 + 13 and 32 + 12 columns, padded to 48)
    assert net.shapes == [(32, 32), (96, 48), (96, 48)]


class BrightBelowIsNodule(torch.nn.Module):
    """Fake 2.5D nodule model: 'nodule' where the slice below (channel 0) is brighter than -400 HU."""

    def forward(self, x):
        score = (x[:, :1] - 0.4) * 40
        return torch.cat([-score, score], dim=1)


def test_2_5d_nodule_network_sees_the_real_slices_beyond_the_lungs():
    arr = np.full((6, 48, 48), 40.0, np.float32)
    lungs = np.zeros(arr.shape, np.uint8)
    lungs[2:, 8:40, 8:40] = 1
    arr[lungs > 0] = -850
    arr[1] = -850  # the slice below the lungs' first: dark (not yet labelled lung) ...
    arr[1, 22:24, 22:24] = 30  # ... with a bright spot the first lung slice's input must show
    ct = CTImage.from_array(arr, spacing=(0.7, 0.7, 1.0))
    meta = {"preprocessing": {"dims": 2, "input_size": None, "context_slices": 1,
                              "intensity": {"mode": "window", "windows": ["lung"]}},
            "classes": ["background", "nodule"], "spec": {"divisibility": 16}, "display_name": "fake"}
    finder = NoduleSegmenter(ModelSegmenter(BrightBelowIsNodule(), meta, precision="fp32"))
    prob = finder.probability(ct, lungs)
    assert prob[2, 22:24, 22:24].min() > 0.9  # slice 1 seen below slice 2, not slice 2 repeated
    assert prob[2, 30:34, 30:34].max() < 0.1 and prob[3, 22:24, 22:24].max() < 0.1


@pytest.mark.parametrize("pixel_mm", [0.7, 1.4])  # native, and resampled to the model's 0.7 mm
def test_nodule_voxels_gathered_window_by_window_equal_the_thresholded_probability_map(pixel_mm):
    """At native pixel size the finder keeps only the voxels over the threshold of each window
    (no probability map of the lungs' box); they must be the map's, with the same values."""
    from lungseg.postprocess import voxels

    rng = np.random.default_rng(4)
    arr = np.full((12, 80, 80), -1000.0, np.float32)  # dark for the fake model (its edge is ~ -800 HU)
    lungs = np.zeros(arr.shape, np.uint8)
    lungs[1:11, 10:70, 4:36] = 1
    lungs[3:10, 12:66, 44:76] = 2
    arr[lungs > 0] = -850
    arr[(rng.random(arr.shape) < 0.02) & (lungs > 0)] = 30  # bright specks in both lungs
    arr[5:8, 30:34, 50:54] = 30
    ct = CTImage.from_array(arr, spacing=(pixel_mm, pixel_mm, 1.0))
    meta = {"preprocessing": {"dims": 2, "input_size": None, "context_slices": 1,
                              "intensity": {"mode": "window", "windows": ["lung"]}},
            "classes": ["background", "nodule"], "spec": {"divisibility": 16}, "display_name": "fake"}
    finder = NoduleSegmenter(ModelSegmenter(BrightIsNodule(), meta, precision="fp32", batch_size=4),
                             min_mean_probability=0.0)
    plan = finder._plan(ct, lungs)
    assert plan.resampled == (pixel_mm != 0.7)
    coords, values = finder._candidate_voxels(plan)
    box, prob = finder.box_probability(ct, lungs)
    expected = voxels(prob >= finder.threshold)
    assert len(expected[0]) > 100
    for got, want in zip(coords, expected):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(values, prob[expected])
    found = finder(ct, lungs)
    assert found[6, 31, 51] and found.sum() <= len(expected[0])


@needs_weights
def test_thick_slices_come_with_a_note_on_the_nodule_list(default):
    from lungseg.io import read_ct
    from lungseg.samples import SAMPLE_NODULE_CT
    from lungseg.synth.reslice import reslice

    ct = read_ct(SAMPLE_NODULE_CT)  # LIDC-IDRI-0003, 2.5 mm slices
    thick = default(reslice(ct, 5.0))
    assert any("slices are 5.0 mm apart" in n and "validated on <= 2.5 mm" in n for n in thick.notes)
    assert (thick.labels == 3).any()  # a note, not a refusal: the 28 mm nodule is still there
    assert not any("mm apart" in n for n in default(ct).notes)
