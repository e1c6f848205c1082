"""`lungseg segment` end to end, and every bad input: one line, exit 2, no output file."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import shared_path

from lungseg.samples import SAMPLE_CT


def lungseg(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "lungseg", *map(str, args)], capture_output=True,
                          encoding="utf-8", errors="replace", cwd=cwd, timeout=300)


def test_segment_sample_writes_mask_report_preview(tmp_path):
    r = lungseg("segment", SAMPLE_CT, "-o", tmp_path / "m.nii.gz", "--report", tmp_path / "r.json",
                "--preview", tmp_path / "p.png", "--model", "classical")
    assert r.returncode == 0, r.stderr
    mask, ref = sitk.ReadImage(str(tmp_path / "m.nii.gz")), sitk.ReadImage(str(SAMPLE_CT))
    assert mask.GetSize() == ref.GetSize()
    np.testing.assert_allclose(mask.GetOrigin(), ref.GetOrigin(), atol=1e-5)
    np.testing.assert_allclose(mask.GetSpacing(), ref.GetSpacing(), atol=1e-6)
    assert set(np.unique(sitk.GetArrayFromImage(mask))) == {0, 1, 2}
    report = json.loads((tmp_path / "r.json").read_text())
    assert 1500 < report["lungs"]["right"]["volume_ml"] < 4000
    assert report["lungs"]["total"]["emphysema_index_pct"] >= 0
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_default_model_runs_or_falls_back_and_says_so(tmp_path):
    from lungseg.inference.pipeline import default_available

    r = lungseg("segment", SAMPLE_CT, "-o", tmp_path / "m.nrrd", "--report", tmp_path / "r.json")
    assert r.returncode == 0, r.stderr
    model = json.loads((tmp_path / "r.json").read_text())["model"]
    if default_available():
        assert model.startswith("default")
    else:
        assert model == "classical" and "classical" in r.stderr


def test_batch_folder_with_progress(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    img = sitk.ReadImage(str(SAMPLE_CT))
    for name in ("a", "b"):
        sitk.WriteImage(img, str(src / f"{name}.nii.gz"))
    r = lungseg("segment", src, "-o", tmp_path / "out", "--model", "classical", "--report", "yes")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "a.nii.gz", "a.report.json", "b.nii.gz", "b.report.json", "lungseg_batch.csv"]
    assert "segmenting" in r.stderr  # tqdm bar


def _assert_clean_failure(r, out, needle):
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert needle in lines[0], lines[0]
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}*"))


def _mr_dicom(path):
    img = sitk.GetImageFromArray(np.zeros((64, 64), np.int16))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    img.SetMetaData("0008|0060", "MR")
    writer.SetFileName(str(path))
    writer.Execute(img)


@pytest.mark.parametrize("case,needle", [
    ("missing", "not found"),
    ("truncated", "cannot read"),
    ("empty_folder", "empty"),
    ("mr", "modality is MR"),
    ("rgb", "colour"),
    ("tiny", "1x1"),
    ("nan", "NaN"),
    ("text", "unsupported"),
])
def test_bad_input_gives_one_line_and_exit_2(tmp_path, case, needle):
    from PIL import Image

    src = tmp_path / "input"
    if case == "missing":
        src = tmp_path / "nope.nii.gz"
    elif case == "truncated":
        src = tmp_path / "cut.nii.gz"
        sitk.WriteImage(sitk.ReadImage(str(SAMPLE_CT)), str(src))
        src.write_bytes(src.read_bytes()[:5000])
    elif case == "empty_folder":
        src.mkdir()
    elif case == "mr":
        src = tmp_path / "mr.dcm"
        _mr_dicom(src)
    elif case == "rgb":
        src = tmp_path / "photo.png"
        rgb = np.zeros((64, 64, 3), np.uint8)
        rgb[..., 0] = 255
        rgb[20:40, :, 2] = 180
        Image.fromarray(rgb).save(src)
    elif case == "tiny":
        src = tmp_path / "dot.png"
        Image.fromarray(np.zeros((1, 1), np.uint8)).save(src)
    elif case == "nan":
        src = tmp_path / "nan.npy"
        a = np.zeros((32, 32), np.float32)
        a[3, 3] = np.nan
        np.save(src, a)
    elif case == "text":
        src = tmp_path / "notes.txt"
        src.write_text("hello")
    out = tmp_path / "out" / "mask.nii.gz"
    _assert_clean_failure(lungseg("segment", src, "-o", out), out, needle)


@pytest.mark.shared
def test_abdomen_gives_empty_mask_and_warning(tmp_path):
    out = tmp_path / "m.nii.gz"
    r = lungseg("segment", shared_path("dicom/abdomen_series"), "-o", out, "--model", "classical")
    assert r.returncode == 0, r.stderr
    assert "no lungs found" in r.stderr
    assert sitk.GetArrayFromImage(sitk.ReadImage(str(out))).max() == 0


def test_the_command_flushes_its_output_before_its_fast_exit(tmp_path):
    """`lungseg` ends with os._exit (no interpreter teardown): a piped stdout, which Python
    buffers, must still get the summary line, and the exit code must be main()'s."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # block-buffered, as for most users
    r = subprocess.run([sys.executable, "-m", "lungseg", "segment", str(SAMPLE_CT), "-o", str(tmp_path / "m.nii.gz"),
                        "--model", "classical"], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "right" in r.stdout and "mL" in r.stdout and str(tmp_path / "m.nii.gz") in r.stdout
    r = lungseg("segment", tmp_path / "missing.nii.gz", "-o", tmp_path / "x.nii.gz")
    assert r.returncode == 2 and r.stderr.startswith("lungseg: error: input not found")


def test_help_is_fast_and_lists_commands():
    r = lungseg("--help")
    assert r.returncode == 0 and "segment" in r.stdout


def test_default_model_writes_probability_maps_on_request(tmp_path):
    """--probabilities with the shipped model: the lung probability on the input's grid, high
    inside the reference lungs and low outside."""
    pytest.importorskip("openvino")
    r = lungseg("segment", SAMPLE_CT, "-o", tmp_path / "m.nii.gz", "--probabilities", tmp_path / "p.nii.gz",
                "--quiet")
    assert r.returncode == 0, r.stderr
    prob = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "p.nii.gz")))
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(SAMPLE_CT).replace("sample_ct", "sample_wholelung"))) > 0
    assert prob.shape == ref.shape
    assert prob[ref].mean() > 0.85 and prob[~ref].mean() < 0.1


def test_one_shot_runs_turn_numpys_huge_page_advice_off():
    """In a child process (this session keeps numpy's default): the advice was on, and is off after."""
    code = ("import numpy as np\n"
            "from numpy._core.multiarray import _get_madvise_hugepage\n"
            "from lungseg.memory import no_huge_page_advice\n"
            "was = _get_madvise_hugepage()\n"
            "assert no_huge_page_advice() == was\n"
            "assert not _get_madvise_hugepage() and np.ones((16, 512, 512)).sum() == 16 * 512 * 512\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "NUMPY_MADVISE_HUGEPAGE": "1"})
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_one_shot_runs_keep_freed_memory_for_reuse():
    """glibc accepts the two settings; big arrays still allocate and free (in a child process,
    so this test session keeps the usual allocator)."""
    code = ("import numpy as np\n"
            "from lungseg.memory import keep_freed_memory\n"
            "assert keep_freed_memory()\n"
            "for _ in range(3):\n"
            "    a = np.ones((64, 512, 512), np.float32)  # 64 MB: above glibc's mmap threshold\n"
            "    assert float(a.sum()) == a.size\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
