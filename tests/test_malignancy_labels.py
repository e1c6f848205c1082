"""Malignancy labels of the LIDC crops (lungseg.data.malignancy): the label rule, the folder ->
pylidc cluster mapping on crafted plain data (no pylidc), the CSV round trip, the shipped table."""
import numpy as np
import pytest
from PIL import Image

from lungseg.data.malignancy import (FolderObs, Reading, ScanRecord, build_table, expected_layout,
                                     load_malignancy_table, malignancy_label, patient_rows, rating_stats,
                                     write_malignancy_table)
from lungseg.errors import LungsegError


@pytest.mark.parametrize("ratings, median, label", [
    ([2, 3], 2.5, "benign"),
    ([3], 3.0, "indeterminate"),
    ([2, 4], 3.0, "indeterminate"),
    ([3, 4], 3.5, "malignant"),
    ([5, 5, 3, 4], 4.5, "malignant"),
    ([4, 4, 3, 2], 3.5, "malignant"),
    ([1, 2, 5], 2.0, "benign"),
])
def test_label_rule(ratings, median, label):
    assert rating_stats(ratings)[0] == median
    assert malignancy_label(ratings) == label


def test_rating_stats_mean_and_bad_input():
    assert rating_stats([5, 5, 3, 4]) == (4.5, 4.25)
    for bad in ([], [0, 3], [3, 6], [float("nan")], ["x"], None):
        with pytest.raises(LungsegError):
            rating_stats(bad)


def _reader(malignancy, *slices, diameter=10.0):
    return Reading(malignancy, diameter, tuple(slices))


# Crafted scan: 3 clusters. Cluster 0's longest reader spans slices 10..13 (4 slices); its reader 1
# starts below (wraps, written), reader 2 reaches above (dropped upstream, mask stays empty).
CLUSTERS = (
    (_reader(2, 10, 11, 12, 13), _reader(3, 9, 10), _reader(2, 12, 13, 14), _reader(1, 11), _reader(2, 11)),
    (_reader(4, 50, 51, diameter=20.0), _reader(5, 50, 51, diameter=24.0)),
    (_reader(3, 80, 80, 81),),
)
SCAN = ScanRecord("LIDC-IDRI-9999", 7, 2, 0.7, 1.25, 1.25, CLUSTERS)


def test_expected_layout_wraps_below_drops_above_and_writes_four():
    assert expected_layout(CLUSTERS[0]) == (4, (0, 1, 3))  # 5th reader: never written
    assert expected_layout(CLUSTERS[2]) == (2, (0,))  # two contours on one slice


def _folders(*layouts):
    return {y: FolderObs(set(range(n)), set(masks)) for y, (n, masks) in enumerate(layouts)}


def test_mapping_flags_a_wrong_slice_count():
    rows = patient_rows("LIDC-IDRI-9999", SCAN, _folders((4, [0, 1, 3]), (3, [0, 1]), (2, [0])))
    assert [r["match"] for r in rows] == [True, False, True]
    assert rows[1]["mismatch"] == "slices: 3 != 2"
    first = rows[0]
    assert first["case_id"] == "LIDC-IDRI-9999/nodule-0" and first["ratings"] == (2, 3, 2, 1, 2)
    assert (first["median"], first["label"], first["n_annotations"]) == (2.0, "benign", 5)
    assert (first["expected_masks"], first["dropped_masks"], first["observed_masks"]) == (4, 1, 3)
    assert (rows[1]["median"], rows[1]["label"], rows[1]["diameter_mm"]) == (4.5, "malignant", 22.0)
    assert rows[2]["label"] == "indeterminate"
    assert (first["scan_id"], first["n_scans"], first["pixel_spacing_mm"]) == (7, 2, 0.7)


def test_mapping_flags_wrong_readers_and_extra_folders():
    rows = patient_rows("LIDC-IDRI-9999", SCAN, _folders((4, [0, 1, 2]), (2, [0, 1]), (2, [0]), (3, [0])))
    assert not any(r["match"] for r in rows)  # 4 folders, 3 clusters: no folder of the patient is trusted
    assert all(r["mismatch"].startswith("folders: 4 != clusters 3") for r in rows)
    assert "readers: [0, 1, 2] != [0, 1, 3]" in rows[0]["mismatch"]
    assert rows[3]["mismatch"].endswith("cluster: none for this folder")
    assert rows[3]["ratings"] == () and rows[3]["label"] == "" and rows[3]["median"] is None
    assert patient_rows("LIDC-IDRI-9998", None, _folders((2, [0])))[0]["mismatch"] == (
        "folders: 1 != clusters 0; scan: patient not in the database; cluster: none for this folder")


def _png(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((4, 4), value, np.uint8)).save(path)


def test_build_table_on_a_crafted_folder_and_csv_round_trip(tmp_path):
    crops = tmp_path / "crops"
    for y, (n, masks) in enumerate([(4, [0, 1, 3]), (3, [0, 1]), (2, [0])]):  # nodule-1: one slice too many
        for sl in range(n):
            base = crops / f"LIDC-IDRI-slices/LIDC-IDRI-9999/nodule-{y}"
            _png(base / f"images/slice-{sl}.png", 90)
            for j in range(4):
                _png(base / f"mask-{j}/slice-{sl}.png", 255 if j in masks and sl == 0 else 0)
    rows, summary = build_table(crops, pylidc_query={"LIDC-IDRI-9999": SCAN}.get)
    assert [r["match"] for r in rows] == [True, False, True]
    assert (summary["folders"], summary["matched_folders"]) == (3, 2)
    assert summary["mismatches_by_reason"] == {"slices": 1}
    assert summary["labels_matched"] == {"benign": 1, "indeterminate": 1}
    assert summary["two_scan_patients_last_scan_used"] == ["LIDC-IDRI-9999"]

    path = write_malignancy_table(rows + patient_rows("LIDC-IDRI-9998", None, _folders((2, [0]))), tmp_path / "t.csv")
    loaded = load_malignancy_table(path)
    assert loaded[:3] == rows
    assert loaded[3]["scan_id"] is None and loaded[3]["ratings"] == () and loaded[3]["match"] is False
    with pytest.raises(LungsegError):
        load_malignancy_table(tmp_path / "missing.csv")


@pytest.mark.shared
def test_shipped_table():
    rows = load_malignancy_table()
    lidc3 = {r["nodule"]: r for r in rows if r["patient_id"] == "LIDC-IDRI-0003"}
    assert {y: r["median"] for y, r in lidc3.items()} == {0: 2.0, 1: 4.5, 2: 3.5, 3: 3.5}
    assert lidc3[0]["ratings"] == (2,) and lidc3[0]["label"] == "benign"
    assert all(r["match"] for r in lidc3.values())
    assert len(rows) == 1279 and sum(r["match"] for r in rows) / len(rows) >= 0.95
