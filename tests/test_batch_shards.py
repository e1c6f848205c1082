"""Batch mode for clusters: --shard I/N splits a folder deterministically, finished cases are
skipped on a rerun, a failing case is logged in the shard's CSV and does not stop the rest."""
import csv
import shutil

import numpy as np
import pytest

from lungseg.cli import main
from lungseg.samples import SAMPLE_CT

CASES = ["case0", "case1", "case2", "case3", "case4"]


@pytest.fixture
def scans(tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    for name in CASES:
        shutil.copy(SAMPLE_CT, folder / f"{name}.nrrd")
    return folder


def segment(*args) -> int:
    return main(["segment", *map(str, args), "--model", "classical", "--quiet"])


def rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["case", "status", "seconds", "error"]
        return list(reader)


def masks(out):
    return sorted(p.name for p in out.glob("*.nii.gz"))


def test_shards_are_disjoint_and_cover_the_folder(scans, tmp_path):
    out = tmp_path / "masks"
    assert segment(scans, "-o", out, "--shard", "0/2") == 0
    assert segment(scans, "-o", out, "--shard", "1/2") == 0
    first, second = rows(out / "lungseg_shard_0_of_2.csv"), rows(out / "lungseg_shard_1_of_2.csv")
    names = [r["case"] for r in first + second]
    assert sorted(names) == [f"{c}.nrrd" for c in CASES]  # every case exactly once
    assert [r["case"] for r in first] == ["case0.nrrd", "case2.nrrd", "case4.nrrd"]  # every 2nd from 0
    assert {r["status"] for r in first + second} == {"ok"}
    assert masks(out) == [f"{c}.nii.gz" for c in CASES]
    assert not list(out.glob(".*"))  # no temporary files left behind


def test_rerun_skips_finished_cases_and_overwrite_redoes_them(scans, tmp_path):
    out = tmp_path / "masks"
    assert segment(scans, "-o", out, "--shard", "0/2", "--report", "yes") == 0
    done = sorted(out.glob("case*"))
    assert len(done) == 6  # 3 masks + 3 reports
    mtimes = {p: p.stat().st_mtime_ns for p in done}

    assert segment(scans, "-o", out, "--shard", "0/2", "--report", "yes") == 0
    log = rows(out / "lungseg_shard_0_of_2.csv")
    assert len(log) == 3 and {r["status"] for r in log} == {"skipped"}
    assert {p: p.stat().st_mtime_ns for p in done} == mtimes

    # a case whose report is missing (killed after its mask) is not finished: it is redone
    (out / "case2.report.json").unlink()
    assert segment(scans, "-o", out, "--shard", "0/2", "--report", "yes") == 0
    assert [r["status"] for r in rows(out / "lungseg_shard_0_of_2.csv")] == ["skipped", "ok", "skipped"]

    assert segment(scans, "-o", out, "--shard", "0/2", "--report", "yes", "--overwrite") == 0
    assert {r["status"] for r in rows(out / "lungseg_shard_0_of_2.csv")} == {"ok"}
    assert all(p.stat().st_mtime_ns > mtimes[p] for p in done if p.name != "case2.report.json")


def test_a_corrupt_case_is_logged_and_the_rest_go_on(scans, tmp_path, capsys):
    (scans / "broken.nii.gz").write_bytes(np.random.default_rng(0).bytes(4000))
    out = tmp_path / "masks"
    assert segment(scans, "-o", out) == 1
    log = {r["case"]: r for r in rows(out / "lungseg_batch.csv")}
    assert len(log) == 6
    assert log["broken.nii.gz"]["status"] == "failed" and "NIfTI" in log["broken.nii.gz"]["error"]
    assert all(log[f"{c}.nrrd"]["status"] == "ok" for c in CASES)
    assert masks(out) == [f"{c}.nii.gz" for c in CASES]  # no mask for the broken case
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("lungseg: error: 1 of 6 scans failed") and "lungseg_batch.csv" in err[-1]

    # a rerun retries only the failed case
    assert segment(scans, "-o", out) == 1
    statuses = {r["case"]: r["status"] for r in rows(out / "lungseg_batch.csv")}
    assert statuses.pop("broken.nii.gz") == "failed" and set(statuses.values()) == {"skipped"}


def test_the_csv_log_is_valid_after_every_case(scans, tmp_path, monkeypatch):
    """A job killed between cases leaves a CSV of the cases done so far."""
    from lungseg.commands import segment as command

    out, seen = tmp_path / "masks", []
    real = command._segment_one

    def segment_one(src, *args, **kwargs):
        seen.append([r["case"] for r in rows(out / "lungseg_shard_1_of_2.csv")])
        return real(src, *args, **kwargs)

    monkeypatch.setattr(command, "_segment_one", segment_one)
    assert segment(scans, "-o", out, "--shard", "1/2") == 0
    assert seen == [[], ["case1.nrrd"]]


def test_a_shard_with_no_cases_leaves_an_empty_log(scans, tmp_path):
    out = tmp_path / "masks"
    assert segment(scans, "-o", out, "--shard", "6/7") == 0
    assert rows(out / "lungseg_shard_6_of_7.csv") == [] and masks(out) == []


@pytest.mark.parametrize("shard", ["2/2", "a/b", "0/0", "-1/2", "1", "1/2/3", ""])
def test_bad_shard_gives_one_line_and_exit_2(scans, tmp_path, capsys, shard):
    out = tmp_path / "masks"
    assert segment(scans, "-o", out, f"--shard={shard}") == 2  # '=': argparse takes '-1/2' for an option
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("lungseg: error: --shard must be I/N"), err
    assert not out.exists()


def test_shard_of_a_single_scan_is_an_error(tmp_path, capsys):
    out = tmp_path / "mask.nii.gz"
    assert segment(SAMPLE_CT, "-o", out, "--shard", "0/2") == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "single scan" in err[0]
    assert not out.exists()


def test_two_scans_with_one_output_name_are_refused(scans, tmp_path, capsys):
    shutil.copy(SAMPLE_CT, scans / "case0.nii.gz")  # case0.nrrd and case0.nii.gz -> case0.nii.gz
    out = tmp_path / "masks"
    assert segment(scans, "-o", out, "--shard", "0/2") == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "same mask" in err[0]
    assert not out.exists()
