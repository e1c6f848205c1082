"""Inter-reader agreement: consensus of the others, the empty-consensus rule, and the LIDC archive."""
import io
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lungseg.evaluation.readers_agreement import (agreement_with_consensus, consensus, iter_lidc_nodules,
                                                   reader_agreement, reader_vs_consensus)


def _square(y0, x0, n=4, size=16):
    m = np.zeros((size, size), bool)
    m[y0:y0 + n, x0:x0 + n] = True
    return m


def test_each_reader_against_the_consensus_of_the_others():
    a = _square(4, 4)
    b = _square(4, 5)  # shifted by one column
    empty = np.zeros_like(a)
    masks = np.stack([a, a, b, empty])[:, None]  # (readers, slices=1, H, W)
    res = reader_vs_consensus(masks)
    # reader 0: others a, b, empty -> consensus a & b (12 px); a has 16: Dice 24/28
    assert res["dice"][0, 0] == pytest.approx(24 / 28)
    assert res["dice"][1, 0] == pytest.approx(24 / 28)
    # reader 2: others a, a, empty -> consensus a; Dice(b, a) = 24/32
    assert res["dice"][2, 0] == pytest.approx(24 / 32)
    # reader 3 marked nothing while the others agree: a miss, Dice 0
    assert res["dice"][3, 0] == 0.0 and not res["reader_marked"][3, 0]
    assert res["defined"].all()


def test_empty_consensus_is_left_out_and_counted():
    a = _square(4, 4)
    empty = np.zeros_like(a)
    masks = np.stack([a, empty, empty, empty])[:, None]
    res = reader_vs_consensus(masks)
    assert not res["defined"][0, 0] and np.isnan(res["dice"][0, 0]) and res["reader_marked"][0, 0]
    # readers 1..3: others are a + two empties -> one vote, no consensus either
    assert not res["defined"].any()


def test_per_slice_vs_per_nodule():
    a = _square(4, 4)
    empty = np.zeros_like(a)
    # slice 0: all agree; slice 1: only readers 0 and 1 mark
    masks = np.stack([np.stack([a, a]), np.stack([a, a]), np.stack([a, empty]), np.stack([a, empty])])
    per_slice = reader_vs_consensus(masks, per_slice=True)
    assert per_slice["dice"].shape == (4, 2)
    assert per_slice["dice"][2, 1] == 0.0  # reader 2 missed slice 1 where readers 0 and 1 agree
    assert not per_slice["defined"][0, 1]  # for reader 0 the others are a, empty, empty
    per_nodule = reader_vs_consensus(masks, per_slice=False)
    assert per_nodule["dice"].shape == (4, 1)
    assert per_nodule["dice"][2, 0] == pytest.approx(2 * 16 / (16 + 32))


def test_model_placed_on_the_reader_scale():
    a = _square(4, 4)
    masks = np.stack([a, a, a, np.zeros_like(a)])
    res = agreement_with_consensus(a, masks)
    assert res["dice_vs_leave_one_out"] == 1.0 and res["n_defined"] == 4 and res["dice_vs_all_readers"] == 1.0
    assert consensus(masks).sum() == 16


def _write_archive(path: Path):
    """A miniature archive in the LIDC crops layout: 2 patients, 3 nodules."""
    layout = {("LIDC-IDRI-0001", "nodule-0"): 2, ("LIDC-IDRI-0001", "nodule-1"): 1, ("LIDC-IDRI-0002", "nodule-0"): 1}
    with tarfile.open(path, "w:gz") as tf:
        for (patient, nodule), n_slices in layout.items():
            for s in range(n_slices):
                for folder in ("images", "mask-0", "mask-1", "mask-2", "mask-3"):
                    shift = {"mask-1": 1, "mask-3": 2}.get(folder, 0)
                    img = (_square(4, 4 + shift) * 255).astype(np.uint8)
                    if folder == "mask-3" and patient.endswith("2"):
                        img[:] = 0
                    buf = io.BytesIO()
                    Image.fromarray(img).save(buf, format="PNG")
                    info = tarfile.TarInfo(f"LIDC-IDRI-slices/{patient}/{nodule}/{folder}/slice-{s}.png")
                    info.size = len(buf.getvalue())
                    tf.addfile(info, io.BytesIO(buf.getvalue()))


def test_archive_reading_and_tables(tmp_path):
    tar = tmp_path / "crops.tar.gz"
    _write_archive(tar)
    nodules = list(iter_lidc_nodules(tar))
    assert [(n.patient, n.nodule, n.masks.shape) for n in nodules] == [
        ("LIDC-IDRI-0001", "nodule-0", (4, 2, 16, 16)), ("LIDC-IDRI-0001", "nodule-1", (4, 1, 16, 16)),
        ("LIDC-IDRI-0002", "nodule-0", (4, 1, 16, 16))]
    assert len(list(iter_lidc_nodules(tar, max_patients=1))) == 2
    res = reader_agreement(tar, n_boot=50)
    assert (res["n_patients"], res["n_nodules"], res["n_crops"]) == (2, 3, 4)
    assert res["readers_marking_crop"] == [0, 0, 0, 1, 3]
    table = {r["reader"]: r for r in res["per_crop"]}
    assert table["reader 3"]["n_missed"] == 1 and table["all readers"]["n_scored"] == 16
    # reader 0 (columns 4..7): patient 1's others mark columns 5..8, 4..7, 6..9 -> consensus 5..8,
    # Dice 24/32 on 3 crops; patient 2's others mark 5..8, 4..7, nothing -> consensus 5..7, Dice 24/28
    assert table["reader 0"]["dice_mean"] == pytest.approx((3 * 24 / 32 + 24 / 28) / 4)


def _shared_tarball():
    root = Path(os.environ.get("LUNGSEG_SHARED_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")
    return root / "nodules" / "lidc_crops_128" / "lidc_crops_shared.tar.gz"


@pytest.mark.shared
def test_shared_lidc_crops_first_patients():
    tar = _shared_tarball()
    if not tar.exists():
        pytest.skip(f"shared LIDC crops not found at {tar} (set LUNGSEG_SHARED_DATA)")
    res = reader_agreement(tar, n_boot=100, max_patients=3)
    assert res["n_patients"] == 3 and res["n_crops"] > 0
    pooled = {r["reader"]: r for r in res["per_crop"]}["all readers"]
    assert 0.3 < pooled["dice_mean"] < 0.95 and pooled["n_scored"] > 0
