"""The candidate-scoring stage: the shipped 3D CNN scorer tells a nodule from a vessel, its
operating point, its runtimes, its training script, and the report's detection_score."""
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, shared_path
from lungseg.inference.candidates import Candidates
from lungseg.inference.patches import PATCH, candidate_patches
from lungseg.inference.pipeline import SCORER
from lungseg.io import CTImage

needs_scorer = pytest.mark.skipif(not SCORER.exists(), reason="no shipped candidate scorer")
SPACING = (0.8, 0.8, 1.25)  # x, y, z mm


def _sphere_and_tube(radius_mm=4.0):
    """Lung (-850 HU) holding a solid sphere and a vessel of the same radius running along z (seen
    end-on in every axial slice: a round blob, like the sphere, in 2D)."""
    shape = (96, 96, 160)  # z, y, x
    z, y, x = np.indices(shape, dtype=np.float32)
    zz, yy, xx = z * SPACING[2], y * SPACING[1], x * SPACING[0]
    sphere = (xx - 40) ** 2 + (yy - 38) ** 2 + (zz - 60) ** 2 <= radius_mm ** 2
    tube = (xx - 88) ** 2 + (yy - 38) ** 2 <= radius_mm ** 2
    hu = np.full(shape, -850.0, np.float32) + np.random.default_rng(0).normal(0, 15, shape).astype(np.float32)
    hu[sphere | tube] = 40.0
    ct = CTImage.from_array(hu, spacing=SPACING)
    # the candidate the segmentation network would propose for the tube: the stretch of it on ~12 slices
    tube_candidate = tube & (np.abs(zz - 60) <= 7.5)
    ids = np.zeros(shape, np.int32)
    ids[sphere], ids[tube_candidate] = 1, 2
    coords = np.nonzero(ids)
    cands = Candidates(tuple(slice(0, s) for s in shape), coords, ids[coords],
                       np.array([0.0, 0.9, 0.9]), np.array([0.0, 1.0, 1.0]))
    return ct, cands


def test_patches_are_isotropic_and_centred():
    ct, cands = _sphere_and_tube()
    p = candidate_patches(ct.array, ct.spacing_zyx, cands.box, cands.coords, cands.ids, [1, 2])
    assert p.shape == (2, 2, PATCH, PATCH, PATCH)
    # the sphere (8 mm across = 6.4 patch voxels of 1.25 mm) sits in the middle of its patch, both channels
    mid = PATCH // 2
    assert p[0, 1, mid - 1:mid + 1, mid - 1:mid + 1, mid - 1:mid + 1].all() and p[0, 1].sum() < 8 ** 3
    assert p[0, 0, mid, mid, mid] > 0.4 and p[0, 0, 0, 0, 0] < -0.6  # soft tissue vs lung, normalised
    # the tube runs through its patch from top to bottom in the CT channel, only its stretch is the candidate
    assert (p[1, 0, :, mid, mid] > 0.4).all() and not p[1, 1, 0, mid, mid] and p[1, 1, mid, mid, mid]


def _tube_cut_by_the_scan_end(n_slices: int, radius_mm: float = 4.0):
    """A vessel along z through the whole scan; the candidate is its last 7.5 mm, which the
    scan's last slice cuts (as a slab's field of view cuts a vessel)."""
    shape = (n_slices, 96, 96)
    z, y, x = np.indices(shape, dtype=np.float32)
    tube = (x * SPACING[0] - 38) ** 2 + (y * SPACING[1] - 38) ** 2 <= radius_mm ** 2
    hu = np.full(shape, -850.0, np.float32) + np.random.default_rng(0).normal(0, 15, shape).astype(np.float32)
    hu[tube] = 40.0
    ids = (tube & (z * SPACING[2] >= (n_slices - 1) * SPACING[2] - 7.5)).astype(np.int32)
    coords = np.nonzero(ids)
    return CTImage.from_array(hu, spacing=SPACING), Candidates(
        tuple(slice(0, s) for s in shape), coords, ids[coords], np.array([0.0, 0.9]), np.array([0.0, 1.0]))


def test_beyond_the_last_slice_a_patch_repeats_it_unless_the_stack_is_shorter_than_the_patch():
    mid = PATCH // 2
    ct, cands = _tube_cut_by_the_scan_end(48)  # 60 mm: the vessel goes on beyond the scan
    p = candidate_patches(ct.array, ct.spacing_zyx, cands.box, cands.coords, cands.ids, [1])[0]
    assert (p[0, mid:, mid, mid] > 0.4).all()  # the tube, up to the patch's last voxel
    assert p[0, -1, 0, 0] < -0.6  # lung beside it, repeated too
    assert not p[1, -1, mid, mid] and p[1, mid, mid, mid]  # the candidate itself ends with the scan
    ct, cands = _tube_cut_by_the_scan_end(16)  # 20 mm, like a LIDC crop stack: air, as in training
    p = candidate_patches(ct.array, ct.spacing_zyx, cands.box, cands.coords, cands.ids, [1])[0]
    assert p[0, -1, mid, mid] == -1.0


@needs_scorer
def test_a_vessel_cut_by_the_scan_end_scores_as_a_vessel():
    from lungseg.inference.scoring import NetworkScorer

    scorer = NetworkScorer(SCORER)
    ct, cands = _tube_cut_by_the_scan_end(48)
    cut = scorer.score(cands, ct)[1]
    ct, cands = _sphere_and_tube()
    _, sphere, tube = scorer.score(cands, ct)
    # as low as the same vessel inside the scan (padded with air, the cut end looked like a blob: ~0.37)
    assert cut < tube + 0.1 and cut < sphere - 0.5


@needs_scorer
def test_sphere_scores_above_a_tube_of_the_same_radius():
    from lungseg.inference.scoring import NetworkScorer

    ct, cands = _sphere_and_tube()
    scorer = NetworkScorer(SCORER)
    scores = scorer.score(cands, ct)
    assert scores[1] > scores[2] + 0.3
    assert scorer.keep(cands, scores).tolist() == [False, True, False]


@needs_scorer
def test_candidates_that_cannot_reach_the_operating_point_are_not_scored():
    """score = CNN x mean probability <= mean probability: below the operating point there, the
    CNN never runs (score 0, never listed); at an operating point of 0 every candidate is scored."""
    from lungseg.inference.scoring import NetworkScorer

    ct, cands = _sphere_and_tube()
    cands.mean_probability = np.array([0.0, 0.9, 0.3])
    strict = NetworkScorer(SCORER, min_score=0.5).score(cands, ct)
    everything = NetworkScorer(SCORER, min_score=0.0).score(cands, ct)
    assert strict[2] == 0 and 0 < everything[2] < 0.3 and strict[1] == pytest.approx(everything[1])


@needs_scorer
def test_candidates_smaller_than_a_3mm_nodule_are_not_scored():
    """Post-processing drops label-3 pieces under a 3 mm sphere (14 mm^3), so the CNN skips them;
    a 4 mm sphere is scored as before."""
    from lungseg.inference.scoring import NetworkScorer

    ct, cands = _sphere_and_tube(radius_mm=2.0)  # the 4 mm sphere: 33.5 mm^3 = 42 voxels of 0.8 mm^3
    scorer = NetworkScorer(SCORER, min_score=0.0)
    assert scorer.score(cands, ct)[1] > 0
    ct_small, cands_small = _sphere_and_tube(radius_mm=1.2)  # 2.4 mm: 7.2 mm^3, 9 voxels
    assert scorer.score(cands_small, ct_small)[1] == 0


@needs_scorer
def test_openvino_and_torch_scores_agree():
    pytest.importorskip("openvino")
    from lungseg.inference.scoring import NetworkScorer

    ct, cands = _sphere_and_tube()
    ov = NetworkScorer(SCORER).score(cands, ct)
    pt = NetworkScorer(SCORER, runtime="torch").score(cands, ct)
    np.testing.assert_allclose(ov, pt, atol=1e-4)


@needs_scorer
def test_operating_point_comes_with_the_weights_and_the_threshold_overrides_it():
    from lungseg.inference.pipeline import DefaultSegmenter

    meta = json.loads(SCORER.with_suffix(".json").read_text())
    assert 0 < meta["operating_point"] < 1 and "validation phantoms" in meta["operating_point_rule"]
    assert meta["validation"]["val_false_per_scan"] <= 1.0
    seg = DefaultSegmenter()
    assert seg.nodule.scorer.name == "candidate-cnn" and seg.nodule.scorer.min_score == meta["operating_point"]
    assert DefaultSegmenter(nodule_threshold=0.0).nodule.scorer.min_score == 0.0
    assert DefaultSegmenter(scorer="probability").nodule.scorer.name == "mean-probability"


def test_training_script_writes_loadable_weights(tmp_path):
    """A tiny run on random patches: .pt, .onnx and .json beside each other, and a scorer that loads."""
    rng = np.random.default_rng(0)
    for name, n in (("train", 24), ("val", 12)):
        labels = (np.arange(n) % 4 == 0).astype(np.int8)
        np.savez(tmp_path / f"{name}.npz", patches=rng.normal(size=(n, 2, PATCH, PATCH, PATCH)).astype(np.float16),
                 labels=labels, meta=np.stack([np.arange(n) % 2, np.arange(n), np.zeros(n), np.ones(n)], axis=1))
    out = tmp_path / "scorer.pt"
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "train_scorer.py"), "--train", str(tmp_path / "train.npz"),
                        "--val", str(tmp_path / "val.npz"), "--val-lidc", str(tmp_path / "val.npz"), "--out", str(out),
                        "--epochs", "2", "--steps", "2", "--batch", "4", "--faint", "0.5"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["validation"]["n_scans"] == 2 and len(meta["history"]) == 2 and meta["training"]["faint"] == 0.5
    assert all(0 < h["val_lidc_ap"] <= 1 for h in meta["history"])
    assert meta["validation"]["lidc_crops_average_precision"] == meta["history"][meta["validation"]["epoch"]]["val_lidc_ap"]
    from lungseg.inference.scoring import NetworkScorer

    ct, cands = _sphere_and_tube()
    for runtime in ("torch", "auto"):
        scores = NetworkScorer(out, runtime=runtime).score(cands, ct)
        assert scores.shape == (3,) and scores[0] == 0 and ((scores[1:] > 0) & (scores[1:] < 1)).all()
    # two copies of it joined: the mean of equal probabilities, so the same scores, and its own operating point
    joined = tmp_path / "joined.pt"
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "ensemble_scorers.py"), "--members", str(out), str(out),
                        "--val", str(tmp_path / "val.npz"), "--out", str(joined)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(joined.with_suffix(".json").read_text())["members"] == 2
    for runtime in ("torch", "auto"):
        np.testing.assert_allclose(NetworkScorer(joined, runtime=runtime, min_score=0).score(cands, ct),
                                   NetworkScorer(out, runtime=runtime, min_score=0).score(cands, ct), atol=1e-4)


def test_an_ensemble_gives_the_mean_probability_of_its_members():
    import torch

    from lungseg.models.candidate_scorer import build_scorer, scorer_ensemble

    torch.manual_seed(0)
    a, b = build_scorer().eval(), build_scorer().eval()
    x = torch.randn(3, 2, PATCH, PATCH, PATCH)
    with torch.no_grad():
        mean = (torch.sigmoid(a(x)) + torch.sigmoid(b(x))) / 2
        np.testing.assert_allclose(torch.sigmoid(scorer_ensemble([a, b]).eval()(x)).numpy(), mean.numpy(), atol=1e-5)
    assert len(build_scorer({"members": 3}).members) == 3


def test_lidc_crop_negatives_are_dense_regions_away_from_the_nodule_and_the_crop_edge():
    """A crop stack (0.7 mm pixels, 2.5 mm slices): the nodule at the centre, a vessel 15 mm from it,
    one too close to the crop's edge (its patch would show the cut), one too small, one glued to the
    nodule: only the vessel is a negative."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("lidc_scorer_data", REPO / "scripts" / "build_scorer_lidc_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    z, y, x = np.indices((6, 128, 128))
    hu = np.full(z.shape, -850.0)
    nodule = (y - 64) ** 2 + (x - 64) ** 2 <= 36
    for cy, cx, r2 in ((64, 86, 9), (64, 118, 9), (64, 73, 4)):  # vessel, at the edge, glued to the nodule
        hu[(y - cy) ** 2 + (x - cx) ** 2 <= r2] = 40.0
    hu[3, 40, 40] = 40.0  # small
    hu[nodule] = 40.0
    ids, chosen = module.negative_regions(hu, nodule, (2.5, 0.7, 0.7), np.random.default_rng(0), limit=5)
    assert len(chosen) == 1 and ids[2, 64, 86] == chosen[0]


@pytest.fixture(scope="module")
def lidc_result():
    import lungseg

    return lungseg.segment(shared_path("whole_scans/LIDC-IDRI-0003/LIDC-IDRI-0003.zip"))


@pytest.mark.shared
def test_report_gives_every_nodule_a_detection_score_and_says_what_it_means(lidc_result):
    report = lidc_result.report
    assert "not a malignancy score" in report["detection_score"]
    assert report["nodules"], "the shipped model lists the large nodule of LIDC-IDRI-0003"
    threshold = lidc_result.report.get("nodule_operating_point")
    for nodule in report["nodules"]:
        assert 0 <= nodule["detection_score"] <= 1
        if threshold is not None:
            assert nodule["detection_score"] >= threshold - 1e-3


def test_faint_augmentation_fades_tissue_toward_aerated_lung_and_leaves_air_and_the_mask():
    import torch

    sys.path.insert(0, str(REPO / "scripts"))
    from train_scorer import fade

    from lungseg.inference.patches import normalise_hu

    hu = np.array([-1000.0, -850.0, 40.0], np.float32)
    x = torch.zeros((2, 2, 3, 1, 1))
    x[:, 0, :, 0, 0] = torch.from_numpy(normalise_hu(hu))
    x[:, 1] = 1.0
    rng = np.random.default_rng(0)
    faded = fade(x, rng, share=1.0, factor_range=(0.5, 0.5))
    expected = normalise_hu(np.array([-1000.0, -850.0, -405.0]))  # 40 HU halfway to -850
    np.testing.assert_allclose(faded[:, 0, :, 0, 0].numpy(), np.stack([expected, expected]), atol=1e-5)
    assert torch.equal(faded[:, 1], x[:, 1])  # the candidate mask channel is left alone
    assert torch.allclose(fade(x, rng, share=0.0), x, atol=1e-6)  # unfaded (up to rounding)
