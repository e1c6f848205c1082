"""Data: preprocessing, label naming, source adapters, patient-level splits, duplicates,
augmentation (left/right swap on sagittal flips), datasets."""
import json
from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from conftest import shared_path

from lungseg.data import AugmentConfig, DataConfig, SplitConfig, build_augmentation, build_datasets
from lungseg.data.cases import Case, canonical_name, label_lut
from lungseg.data.folders import nnunet_folder, paired_2d_folder
from lungseg.data.preprocess import intensity_stats, normalize_intensity, resize
from lungseg.data.shared_sets import cip_labels
from lungseg.data.splits import find_duplicates, kfold_patients, split_patients
from lungseg.data.synthetic import synthetic_cases
from lungseg.errors import LungsegError, NotHUError
from lungseg.io import CTImage

CLASSES4 = ["background", "right_lung", "left_lung", "nodule"]


def fake_case(seed, shape=(6, 32, 32), nodule=True, **_):
    """A tiny chest phantom standing in for lungseg.synth.generate_case: body at 40 HU, two
    lungs at -850 HU (right lung at low x = patient right in LPS), a 30 HU nodule in the right
    lung, jittered by seed."""
    rng = np.random.default_rng(seed)
    z, h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    ct = np.full(shape, -1000.0, np.float32)
    labels = np.zeros(shape, np.uint8)
    body = ((yy - h / 2) / (0.45 * h)) ** 2 + ((xx - w / 2) / (0.47 * w)) ** 2 < 1
    dy, dx = rng.uniform(-1.5, 1.5, 2)
    right = ((yy - h / 2 - dy) / (0.3 * h)) ** 2 + ((xx - 0.3 * w - dx) / (0.14 * w)) ** 2 < 1
    left = ((yy - h / 2 - dy) / (0.28 * h)) ** 2 + ((xx - 0.7 * w - dx) / (0.13 * w)) ** 2 < 1
    nod = ((yy - h / 2) ** 2 + (xx - 0.3 * w) ** 2) < (0.06 * w) ** 2
    for k in range(z):
        ct[k][body] = 40
        ct[k][right | left] = -850
        labels[k][right], labels[k][left] = 1, 2
        if nodule and 1 <= k < z - 1:
            ct[k][nod] = 30
            labels[k][nod] = 3
    ct += rng.normal(0, 15, shape).astype(np.float32)
    return SimpleNamespace(ct=CTImage.from_array(ct, spacing=(1.0, 1.0, 2.0)), labels=labels, params={"seed": seed})


def make_cases(n_patients=4, slices=3, source="fake"):
    cases = []
    for p in range(n_patients):
        def loader(p=p):
            c = fake_case(p, shape=(slices, 32, 32))
            return c.ct.array, c.labels
        cases.append(Case(f"p{p}", f"p{p}", loader, {1: "right_lung", 2: "left_lung", 3: "nodule"}, True,
                          source=source))
    return cases


# ---- preprocessing ---------------------------------------------------------------------------
def test_lung_window_maps_level_to_half_and_clips():
    hu = np.array([[-1350.0, -600.0, 150.0, 3000.0]], np.float32)
    out = normalize_intensity(hu, {"mode": "window", "windows": ["lung"]})
    np.testing.assert_allclose(out[0, 0], [0.0, 0.5, 1.0, 1.0])
    two = normalize_intensity(hu, {"mode": "window", "windows": ["lung", "body"]})
    assert two.shape == (2, 1, 4)
    np.testing.assert_allclose(two[1, 0], [0.0, 0.0, 0.775, 1.0], rtol=1e-6)  # body L40/W400: -160..240
    clip = normalize_intensity(hu, {"mode": "clip", "min": -1000, "max": 400})
    np.testing.assert_allclose(clip[0, 0], [0.0, 400 / 1400, 1150 / 1400, 1.0], rtol=1e-6)


def test_zscore_uses_whole_case_statistics_and_hu_modes_refuse_images():
    vol = np.stack([np.full((4, 4), 0.0), np.full((4, 4), 2.0)]).astype(np.float32)
    spec = {"mode": "zscore"}
    stats = intensity_stats(vol, spec)
    assert stats == {"mean": 1.0, "std": 1.0}
    slice0 = normalize_intensity(vol[0], spec, stats=stats)
    np.testing.assert_allclose(slice0, -1.0)  # as the slice's values are in its volume
    np.testing.assert_allclose(normalize_intensity(vol, spec)[0, 0], -1.0)
    with pytest.raises(NotHUError):
        normalize_intensity(vol, {"mode": "window"}, is_hu=False)
    with pytest.raises(LungsegError, match="unknown intensity mode"):
        normalize_intensity(vol, {"mode": "gamma"})


def test_resize_images_smoothly_and_masks_by_nearest_neighbour():
    mask = np.zeros((1, 32, 32), np.uint8)
    mask[0, 8:24, 4:12], mask[0, 8:24, 20:28] = 1, 2
    small = resize(mask, (16, 16), "mask")
    assert small.dtype == np.uint8 and set(np.unique(small)) == {0, 1, 2}
    assert (small == 1).sum() == 8 * 4 and (small == 2).sum() == 8 * 4
    img = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(1, 32, 32)
    for method in ("bilinear", "lanczos"):
        out = resize(img, (64, 48), "image", method)
        assert out.shape == (1, 64, 48) and abs(out.mean() - img.mean()) < 0.01


# ---- label names -----------------------------------------------------------------------------
def test_canonical_names_and_lookup_tables():
    assert canonical_name("Right Lung") == "right_lung"
    assert canonical_name("lung-left") == "left_lung"
    assert canonical_name("Tumour") == "nodule"
    assert canonical_name("lungs") == "lung"
    names = {1: "right_lung", 2: "left_lung", 3: "nodule"}
    lut = label_lut(names, ["background", "lung"])
    assert lut[:4].tolist() == [0, 1, 1, 0]  # both lungs -> lung, nodule not wanted -> background
    assert label_lut(names, ["background", "lung"], {"nodule": "lung"})[:4].tolist() == [0, 1, 1, 1]
    assert label_lut(names, ["background", "left_lung", "right_lung"])[:3].tolist() == [0, 2, 1]


def test_cip_codes_map_regions_to_sides():
    codes = np.array([0, 2, 3, 9, 12, 512, 521, 777, 782, 768])
    # 9 left upper third, 12 right upper third; types (airway 512, vessel 768) keep their region
    assert cip_labels(codes).tolist() == [0, 1, 2, 2, 1, 0, 2, 2, 1, 0]


# ---- splits and duplicates -------------------------------------------------------------------
def test_patient_split_is_disjoint_deterministic_and_70_20_10():
    ids = [f"pt{i:03d}" for i in range(100)]
    s = split_patients(ids * 3, seed=1)  # repeated ids (slices) count once
    assert [len(s[k]) for k in ("train", "val", "test")] == [70, 20, 10]
    assert not set(s["train"]) & set(s["val"]) and not set(s["val"]) & set(s["test"])
    assert s == split_patients(ids, seed=1) and s != split_patients(ids, seed=2)
    tiny = split_patients(["a", "b", "c"])
    assert all(len(v) == 1 for v in tiny.values())


def test_kfold_folds_partition_the_non_test_patients():
    ids = [f"p{i}" for i in range(23)]
    vals = [kfold_patients(ids, 5, f, seed=0, test_fraction=0.1) for f in range(5)]
    tests = {tuple(v["test"]) for v in vals}
    assert len(tests) == 1 and len(vals[0]["test"]) == 2
    all_val = [p for v in vals for p in v["val"]]
    assert sorted(all_val) == sorted(set(ids) - set(vals[0]["test"]))
    for v in vals:
        assert not set(v["train"]) & set(v["val"])


def test_slices_of_a_patient_never_cross_splits():
    cfg = DataConfig(sources=[{"type": "synthetic", "n_cases": 10, "generator": "test_data:fake_case"}],
                     input_size=[32, 32], split=SplitConfig(seed=3))
    bundle = build_datasets(cfg)
    train_pat = {bundle.train.cases[ci].patient_id for ci, _ in bundle.train.items}
    val_pat = {bundle.val.cases[ci].patient_id for ci, _ in bundle.val.items}
    assert train_pat and val_pat and not train_pat & val_pat
    assert len(bundle.train) == 6 * len(train_pat)  # every slice of a fake case has lungs


def test_duplicate_images_across_splits_are_reported():
    a, b, c = make_cases(3, slices=2)
    copy = Case("copy", "other", a.loader, a.label_names, True)
    dups = find_duplicates({"train": [a, b], "val": [c, copy]})
    assert len(dups) == 2 and all(d["cross_split"] for d in dups)
    assert {o[1] for o in dups[0]["occurrences"]} == {"p0", "copy"}
    assert find_duplicates({"train": [a, b], "val": [c]}) == []


# ---- sources ---------------------------------------------------------------------------------
def test_synthetic_source_generates_lazily():
    calls = []

    def gen(seed, **kw):
        calls.append((seed, kw))
        return fake_case(seed, **kw)

    cases = synthetic_cases(3, seed=5, overrides={"nodule": False}, generator=gen)
    assert [c.patient_id for c in cases] == ["synth-5", "synth-6", "synth-7"] and calls == []
    image, label = cases[1].load()
    assert calls == [(6, {"nodule": False})] and image.shape == label.shape == (6, 32, 32)
    assert set(np.unique(label)) == {0, 1, 2}
    cases[1].load()
    assert len(calls) == 1  # cached


def test_nnunet_folder(tmp_path):
    (tmp_path / "imagesTr").mkdir()
    (tmp_path / "labelsTr").mkdir()
    for cid in ("lung_001", "lung_002"):
        c = fake_case(int(cid[-1]))
        sitk.WriteImage(c.ct.to_sitk(), str(tmp_path / "imagesTr" / f"{cid}_0000.nii.gz"))
        sitk.WriteImage(c.ct.to_sitk(c.labels), str(tmp_path / "labelsTr" / f"{cid}.nii.gz"))
    (tmp_path / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "CT"}, "labels": {"background": 0, "Right Lung": 1, "Left Lung": 2, "nodule": 3},
        "numTraining": 2, "file_ending": ".nii.gz"}))
    cases = nnunet_folder(tmp_path, patient_regex=r"^(lung)_")
    assert [c.case_id for c in cases] == ["lung_001", "lung_002"]
    assert {c.patient_id for c in cases} == {"lung"}
    assert cases[0].label_names == {0: "background", 1: "right_lung", 2: "left_lung", 3: "nodule"}
    image, label = cases[0].load()
    ref = fake_case(1)
    np.testing.assert_allclose(image, ref.ct.array, atol=1e-3)
    np.testing.assert_array_equal(label, ref.labels)


def test_paired_2d_folder(tmp_path):
    from PIL import Image

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for name in ("a_1", "a_2", "b_1"):
        img = (np.random.default_rng(0).random((32, 32)) * 255).astype(np.uint8)
        mask = np.zeros((32, 32), np.uint8)
        mask[8:20, 4:28] = 255
        Image.fromarray(img).save(tmp_path / "images" / f"{name}.png")
        Image.fromarray(mask).save(tmp_path / "masks" / f"{name}.png")
    cases = paired_2d_folder(tmp_path, patient_regex=r"^([a-z])_")
    assert [c.patient_id for c in cases] == ["a", "a", "b"] and not cases[0].is_hu
    image, label = cases[0].load()
    assert image.shape == label.shape == (1, 32, 32)
    assert set(np.unique(label)) == {0, 1} and label.sum() == 12 * 24
    with pytest.raises(LungsegError, match="no mask"):
        (tmp_path / "images" / "c.png").write_bytes((tmp_path / "images" / "a_1.png").read_bytes())
        paired_2d_folder(tmp_path)


# ---- augmentation and datasets ---------------------------------------------------------------
def test_sagittal_flip_swaps_right_and_left_labels():
    aug = build_augmentation(AugmentConfig(flip_lr=1.0), dims=2, lr_swap=(1, 2))
    img = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    lab = np.array([[[1, 1, 2, 2]] * 4], np.float32)
    lab[0, 0, 0] = 3
    out = aug({"image": img, "label": lab})
    np.testing.assert_array_equal(out["image"].numpy(), img[..., ::-1])
    # right lung (1) was at low x; mirrored it lies at high x, i.e. it is now the left lung
    expected = np.array([[[1, 1, 2, 2]] * 4], np.float32)
    expected[0, 0, 3] = 3
    np.testing.assert_array_equal(out["label"].numpy(), expected)


def test_random_window_moves_a_centred_object_around_the_input():
    """augment.crop: each sample is a random window of that size, image and label alike, so a
    nodule at the centre of every crop lands at different places in the network's input."""
    aug = build_augmentation(AugmentConfig(crop=(8, 8)), dims=2)
    img = np.arange(256, dtype=np.float32).reshape(1, 16, 16)
    lab = np.zeros((1, 16, 16), np.float32)
    lab[0, 7:9, 7:9] = 1  # the centred "nodule"
    places = set()
    for seed in range(20):
        aug.set_random_state(seed=seed)
        out = aug({"image": img, "label": lab})
        im, lb = out["image"].numpy(), out["label"].numpy()
        assert im.shape == lb.shape == (1, 8, 8)
        y0, x0 = divmod(int(im[0, 0, 0]), 16)  # where the window starts
        np.testing.assert_array_equal(lb, lab[:, y0:y0 + 8, x0:x0 + 8])
        places.add(tuple(np.argwhere(lb[0])[0]))
    assert len(places) >= 5


def test_translation_moves_a_centred_object_and_keeps_the_input_size():
    aug = build_augmentation(AugmentConfig(translate=1.0, translate_px=20), dims=2)
    img = np.zeros((3, 64, 64), np.float32)
    lab = np.zeros((1, 64, 64), np.float32)
    img[:, 30:34, 30:34] = lab[0, 30:34, 30:34] = 1  # the centred "nodule"
    centres = []
    for seed in range(12):
        aug.set_random_state(seed=seed)
        out = aug({"image": img, "label": lab})
        assert out["image"].shape == (3, 64, 64) and out["label"].shape == (1, 64, 64)
        where = np.argwhere(out["label"][0].numpy() > 0)
        assert len(where) == 16  # moved whole (the shift stays inside the mirrored border)
        centres.append(where.mean(axis=0))
    spread = np.abs(np.array(centres) - 31.5).max()
    assert 5 < spread <= 20.5


def test_faint_fades_dense_tissue_toward_aerated_lung_and_keeps_the_lung_and_the_label():
    aug = build_augmentation(AugmentConfig(faint=1.0, faint_range=(0.5, 0.5)), dims=2)
    to_norm = lambda hu: (hu + 1350.0) / 1500.0  # the lung window the nodule model reads
    img = np.full((5, 32, 32), to_norm(-850.0), np.float32)  # 2.5D: every channel alike
    img[:, :, :4] = to_norm(-1000.0)  # air
    img[:, 10:16, 10:16] = to_norm(40.0)  # a solid nodule
    lab = np.zeros((1, 32, 32), np.float32)
    lab[0, 10:16, 10:16] = 1
    aug.set_random_state(seed=3)
    out = aug({"image": img, "label": lab})
    hu = out["image"].numpy() * 1500.0 - 1350.0
    np.testing.assert_allclose(hu[:, 12, 12], -405.0, atol=1.0)  # halfway from +40 to -850 HU, on every channel
    np.testing.assert_allclose(hu[:, 20, 20], -850.0, atol=0.5)  # aerated lung and air stay
    np.testing.assert_allclose(hu[:, 20, 1], -1000.0, atol=0.5)
    np.testing.assert_array_equal(out["label"], lab)


@pytest.mark.parametrize("dims", [2, 3])
def test_every_augmentation_runs_and_is_reproducible(dims):
    cfg = AugmentConfig(elastic=1, rotate=1, flip_lr=1, scale=1, intensity_shift=1, noise=1, brightness=1, smooth=1,
                        translate=1, faint=1)
    aug = build_augmentation(cfg, dims=dims, lr_swap=(1, 2))
    shape = (1,) + (16,) * dims
    img = np.random.default_rng(0).random(shape, dtype=np.float32)
    lab = np.zeros(shape, np.float32)
    lab[..., 2:7] = 1
    lab[..., 9:14] = 2
    outs = []
    for _ in range(2):
        aug.set_random_state(seed=11)
        outs.append(aug({"image": img, "label": lab}))
    assert outs[0]["image"].shape == shape and torch.equal(outs[0]["image"], outs[1]["image"])
    assert not np.allclose(outs[0]["image"].numpy(), img)
    assert set(torch.unique(outs[0]["label"]).tolist()) <= {0.0, 1.0, 2.0}
    assert build_augmentation(AugmentConfig(), dims) is None


def test_slice_dataset_resizes_remaps_and_drops_empty_slices():
    cfg = DataConfig(sources=[{"type": "synthetic", "n_cases": 4, "generator": "test_data:fake_case"}],
                     classes=["background", "lung"], input_size=[16, 16])
    b = build_datasets(cfg, AugmentConfig(flip_lr=0.5))
    s = b.train[0]
    assert s["image"].shape == (1, 16, 16) and s["label"].dtype == torch.uint8
    assert set(torch.unique(s["label"]).tolist()) == {0, 1} and 0 <= float(s["image"].min()) <= 1
    assert b.in_channels == 1 and b.classes == ["background", "lung"]
    b.train.set_epoch(0)
    a0 = b.train[1]["label"]
    b.train.set_epoch(0)
    assert torch.equal(a0, b.train[1]["label"])


def test_context_slices_give_each_slice_its_neighbours_as_channels():
    """2.5D: channel 1 is the slice itself, 0 and 2 the slices below and above (the edge slice
    repeats at the volume's ends), so training sees what inference builds."""
    common = dict(sources=[{"type": "synthetic", "n_cases": 4, "generator": "test_data:fake_case"}],
                  classes=["background", "lung"], input_size=None, empty_slices=1.0)
    flat = build_datasets(DataConfig(**common))
    deep = build_datasets(DataConfig(context_slices=1, **common))
    assert (flat.in_channels, deep.in_channels) == (1, 3)
    assert deep.train.items == flat.train.items
    by_item = {item: i for i, item in enumerate(flat.train.items)}
    for i, (ci, z) in enumerate(deep.train.items):
        x = deep.train[i]["image"]
        depth = deep.train.cases[ci].load()[0].shape[0]
        for channel, dz in enumerate((-1, 0, 1)):
            neighbour = flat.train[by_item[(ci, min(max(z + dz, 0), depth - 1))]]["image"][0]
            assert torch.equal(x[channel], neighbour)
        assert torch.equal(deep.train[i]["label"], flat.train[i]["label"])
    with pytest.raises(LungsegError, match="2D models only"):
        build_datasets(DataConfig(context_slices=1, dims=3, **{**common, "input_size": [4, 16, 16]}))
    # these volumes are not crop stacks (no meta "slices"): inpainting beyond a stack leaves them as they are
    inpainted = build_datasets(DataConfig(context_slices=1, beyond_stack="inpaint", **common))
    assert all(torch.equal(inpainted.train[i]["image"], deep.train[i]["image"]) for i in range(len(deep.train)))
    with pytest.raises(LungsegError, match="beyond_stack must be one of repeat, inpaint"):
        build_datasets(DataConfig(context_slices=1, beyond_stack="mirror", **common))


def test_thin_crop_stacks_give_thick_slice_views_when_asked():
    from lungseg.data.cases import Case
    from lungseg.data.datasets import SliceDataset

    image = np.repeat(np.linspace(-900, -100, 10, dtype=np.float32)[:, None, None], 16, 1).repeat(16, 2)
    label = np.zeros(image.shape, np.uint8)
    label[4:6, 6:10, 6:10] = 1
    meta = {"readers": 4, "slices": list(range(10))}
    cases = [Case(f"p{i}/nodule-0", f"p{i}", lambda: (image, label), {1: "nodule"}, is_hu=True, source="lidc_crops",
                  meta={**meta, "slice_mm": mm}) for i, mm in enumerate((1.25, 2.5))]
    kw = dict(classes=["background", "nodule"], intensity={"mode": "window", "windows": ["lung"]}, input_size=None,
              context_slices=1, empty_slices=1.0)
    thin = {True: SliceDataset(cases, thick_slices=1.0, **kw), False: SliceDataset(cases, **kw)}
    for i, (ci, z) in enumerate(thin[False].items):
        if not 2 <= z <= 7:  # away from the stack's ends, where the views repeat its edge slice
            continue
        thick, plain = thin[True][i]["image"], thin[False][i]["image"]
        gap = float(thick[2, 0, 0] - thick[0, 0, 0]) / float(plain[2, 0, 0] - plain[0, 0, 0])
        if ci == 0:  # the 1.25 mm stack: its neighbours lie ~2 slices apart
            assert gap >= 1.7
        else:  # the 2.5 mm stack is left as it is
            assert torch.equal(thick, plain)
    with pytest.raises(LungsegError, match="thick_slices is a share"):
        from lungseg.data.config import DataConfig

        build_datasets(DataConfig(context_slices=1, thick_slices=2.0))


def test_synthetic_nodule_crops_with_context_train_on_the_middle_slice():
    from lungseg.data.synthetic import synthetic_nodule_crops

    crops = synthetic_nodule_crops(n_cases=2, seed=0, crop=16, positives_per_case=2, negatives_per_case=1,
                                   context=1, generator=fake_case)
    image, label = crops[0].load()
    assert image.shape == label.shape == (3, 16, 16) and crops[0].meta["centre_only"]
    assert label[1].any()  # a positive crop is cut around a nodule pixel of its middle slice
    from lungseg.data.datasets import SliceDataset

    ds = SliceDataset(crops, ["background", "nodule"], {"mode": "window", "windows": ["lung"]}, input_size=None,
                      context_slices=1)
    assert [z for _, z in ds.items] == [1] * len(crops)
    assert ds[0]["image"].shape == (3, 16, 16)


def _case_with_effusion(seed, **kw):
    """fake_case with a 10 HU 'effusion' filling the back of the left lung (labelled lung, as the
    phantom generator labels pleural fluid)."""
    case = fake_case(seed, **kw)
    fluid = (case.labels == 2) & (np.indices(case.labels.shape)[1] > 18)
    case.ct.array[fluid] = 10.0
    return case


def test_dense_negative_crops_lie_on_dense_lung_and_leave_the_other_crops_alone():
    from lungseg.data.synthetic import synthetic_nodule_crops

    def crops(dense):
        cases = synthetic_nodule_crops(n_cases=1, seed=3, crop=8, positives_per_case=2, negatives_per_case=4,
                                       generator=_case_with_effusion, dense_negatives=dense)
        return [c.load() for c in cases]

    plain, dense = crops(0.0), crops(0.5)
    for a, b in zip(plain[:4], dense[:4]):  # positives and the plain negatives: drawn as before
        np.testing.assert_array_equal(a[0], b[0])
    for image, label in dense[4:]:  # the dense ones: on the fluid, with no nodule
        assert (image == 10.0).any() and not label.any()


def _case_with_small_nodule(seed, **kw):
    """fake_case plus a single-voxel nodule in the left lung: ~1 % of the nodule voxels."""
    case = fake_case(seed, shape=(6, 48, 48), **kw)
    case.labels[3, 24, 33] = 3
    return case


def test_per_nodule_positives_reach_small_nodules_voxel_draws_hardly_do():
    from lungseg.data.synthetic import synthetic_nodule_crops

    def small_hits(per_nodule):
        cases = synthetic_nodule_crops(n_cases=1, seed=5, crop=8, positives_per_case=40, negatives_per_case=0,
                                       generator=_case_with_small_nodule, per_nodule=per_nodule)
        return sum(int(c.load()[1].sum() == 1) for c in cases)

    # a crop of the small nodule holds its one voxel alone (the big one is > 8 px away)
    assert small_hits(True) >= 10 and small_hits(False) <= 3


def test_volume_dataset_patches():
    cfg = DataConfig(sources=[{"type": "synthetic", "n_cases": 3, "generator": "test_data:fake_case"}],
                     dims=3, input_size=None, patch_size=[4, 16, 16], samples_per_epoch=5,
                     split=SplitConfig(fractions=[0.67, 0.33, 0.0]))
    b = build_datasets(cfg)
    assert len(b.train) == 5
    s = b.train[3]
    assert s["image"].shape == (1, 4, 16, 16) and s["label"].shape == (1, 4, 16, 16)
    assert b.val[0]["image"].shape == (1, 6, 32, 32)  # validation sees whole volumes


def test_missing_split_and_class_errors():
    with pytest.raises(LungsegError, match="none of the wanted classes"):
        build_datasets(DataConfig(sources=[{"type": "synthetic", "n_cases": 3, "generator": "test_data:fake_case"}],
                                  classes=["background", "airway"]))
    with pytest.raises(LungsegError, match="at least one training and one validation"):
        build_datasets(DataConfig(sources=[{"type": "synthetic", "n_cases": 1, "generator": "test_data:fake_case"}]))


# ---- shared real data (skipped when ../shared/data is absent) ---------------------------------
@pytest.mark.shared
def test_cip_right_lung_lies_on_the_patient_right():
    from lungseg.data.shared_sets import cip_copdgene

    shared_path("lungs/cip_copdgene/lm-64.nrrd")
    (case,) = cip_copdgene()
    image, label = case.load()
    x = np.nonzero(label)[2]
    right_x, left_x = x[label[label > 0] == 1].mean(), x[label[label > 0] == 2].mean()
    assert right_x < left_x  # canonical LPS: x index grows toward the patient's left
    assert (label > 0).sum() == 65624  # = wholeLung-64


@pytest.mark.shared
def test_imlab3d_and_kaggle_adapters():
    from lungseg.data.shared_sets import imlab3d, kaggle_lungs_64px

    shared_path("lungs/imlab3d")
    cases = imlab3d()
    assert len(cases) == 3 and cases[0].is_hu
    image, label = cases[0].load()
    assert image.shape == (64, 128, 128) and 0.08 < label.mean() < 0.17
    assert np.median(image[label > 0]) < -700
    shared_path("lungs/kaggle_lungs_64px")
    k = kaggle_lungs_64px()
    assert len(k) == 213 and not k[0].is_hu and k[0].meta["patient_unknown"]


@pytest.mark.shared
def test_lidc_consensus_rule_and_nodule_sets():
    from lungseg.data.shared_sets import lidc_crops, lidc_slices, msd_patches

    shared_path("nodules/lidc_crops_128")
    two = lidc_crops(min_readers=2, max_patients=2)
    one = lidc_crops(min_readers=1, max_patients=2)
    assert len({c.patient_id for c in two}) == 2 and len(two) == len(one)
    l2 = np.stack([c.load()[1] for c in two])
    l1 = np.stack([c.load()[1] for c in one])
    assert (l2 <= l1).all() and l2.sum() < l1.sum()  # >= 2 readers is stricter than any reader
    stacks = lidc_crops(min_readers=2, max_patients=2, stack=True)  # one case per nodule, for 2.5D
    assert sum(c.load()[0].shape[0] for c in stacks) == len(two) < len(two) + len(stacks)
    first = stacks[0]
    per_slice = [c for c in two if c.case_id.startswith(first.case_id + "/")]
    assert np.array_equal(first.load()[1], np.concatenate([c.load()[1] for c in per_slice]))
    start = first.meta["slices"][0]
    assert first.meta["slices"] == list(range(start, start + len(per_slice)))  # consecutive slices
    shared_path("nodules/lidc_slices_512")
    s = lidc_slices()
    assert len(s) == 80 and len({c.patient_id for c in s}) == 6
    shared_path("nodules/msd_patches_48")
    m = msd_patches()
    assert len(m) == 130 and len({c.patient_id for c in m}) == 1  # unknown patients stay together
