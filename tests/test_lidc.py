"""LIDC-IDRI reader: XML parsing, placement on the CT grid, rasterisation, grouping of readers.

The numbers asserted for LIDC-IDRI-0003 were checked by hand against the raw XML with
grep/sed/awk (the command is in the comment next to each), not with lungseg itself.
"""
import numpy as np
import pytest
import SimpleITK as sitk
from conftest import SHARED
from scipy import ndimage as ndi

from lungseg.data.lidc import (ConsensusNodule, LidcCase, cluster_annotations, lidc_cases, load_lidc_case,
                               read_lidc_xml)
from lungseg.errors import LungsegError
from lungseg.io import CTImage

LIDC_DIR = SHARED / "whole_scans" / "LIDC-IDRI-0003"
LIDC_XML = LIDC_DIR / "LIDC-IDRI-0003.xml"
needs_lidc = pytest.mark.skipif(not LIDC_XML.exists(), reason=f"shared data not available: {LIDC_DIR}")


# ---- crafted reads ----------------------------------------------------------------------------
def _square(x0, y0, size):
    """8-connected closed outline (column, row) of the square [x0, x0+size] x [y0, y0+size]."""
    top = [(x, y0) for x in range(x0, x0 + size)]
    right = [(x0 + size, y) for y in range(y0, y0 + size)]
    bottom = [(x, y0 + size) for x in range(x0 + size, x0, -1)]
    left = [(x0, y) for y in range(y0 + size, y0, -1)]
    return top + right + bottom + left + [(x0, y0)]


def _roi(z, points, inclusion=True):
    edges = "".join(f"<edgeMap><xCoord>{x}</xCoord><yCoord>{y}</yCoord></edgeMap>" for x, y in points)
    return (f"<roi><imageZposition>{z}</imageZposition><imageSOP_UID>1.2.{z}</imageSOP_UID>"
            f"<inclusion>{'TRUE' if inclusion else 'FALSE'}</inclusion>{edges}</roi>")


def _nodule(nid, rois, malignancy=3):
    chars = "" if malignancy is None else f"<characteristics><malignancy>{malignancy}</malignancy></characteristics>"
    return f"<unblindedReadNodule><noduleID>{nid}</noduleID>{chars}{''.join(rois)}</unblindedReadNodule>"


def _xml(*sessions, uid=None):
    header = f"<ResponseHeader><SeriesInstanceUid>{uid}</SeriesInstanceUid></ResponseHeader>" if uid else ""
    body = "".join(f"<readingSession><servicingRadiologistID>{i}</servicingRadiologistID>{''.join(s)}"
                   "</readingSession>" for i, s in enumerate(sessions))
    return f'<?xml version="1.0"?><LidcReadMessage xmlns="http://www.nih.gov">{header}{body}</LidcReadMessage>'


@pytest.fixture
def small_ct():
    """64x64x10 voxels of 1 x 1 x 2 mm, z = 0, 2, ..., 18 mm, identity direction."""
    return CTImage.from_array(np.zeros((10, 64, 64)), spacing=(1.0, 1.0, 2.0))


def _case(tmp_path, ct, *sessions) -> LidcCase:
    xml = tmp_path / "read.xml"
    xml.write_text(_xml(*sessions))
    return load_lidc_case(xml, ct=ct, include_outline=True)  # crafted squares: sizes count the outline


def test_two_readers_overlapping_form_one_cluster(tmp_path, small_ct):
    case = _case(tmp_path, small_ct,
                 [_nodule("a", [_roi(2.0, _square(10, 10, 10)), _roi(4.0, _square(10, 10, 10))], malignancy=4)],
                 [_nodule("b", [_roi(4.0, _square(12, 12, 10))], malignancy=2)])
    assert len(case.nodules) == 1
    nod = case.nodules[0]
    assert nod.n_readers == 2 and nod.malignancy_ratings == [4, 2] and nod.median_malignancy == 3.0
    # squares of 11x11 pixels (outline included) overlap in 9x9 on the one shared slice (z = 4 mm)
    box, mask = nod.consensus(2)
    assert mask.sum() == 81 and box[0] == slice(1, 3) and mask[1].sum() == 81
    assert case.label_map().sum() == 3 * 81
    a = case.annotations[0]
    assert a.mask.sum() == 2 * 121 and a.volume_ml == pytest.approx(2 * 121 * 2 / 1000)
    assert a.diameter_mm == pytest.approx(10 * np.sqrt(2))  # the square's diagonal
    assert a.centroid_mm == pytest.approx((15.0, 15.0, 3.0))
    nodules, ignored = case.reference_findings(min_readers=2)
    assert len(nodules) == 1 and ignored == []
    assert case.reference_findings(min_readers=3) == ([], nodules)


def test_one_readers_two_touching_nodules_never_share_a_cluster(tmp_path, small_ct):
    # reader 0: two squares one pixel apart (outline distance 1 mm = the default tol); reader 1
    # traces the first one exactly. The 3-annotation cluster must split, by tightening tol.
    first, second = _square(10, 10, 5), _square(16, 10, 5)
    case = _case(tmp_path, small_ct,
                 [_nodule("A", [_roi(4.0, first)]), _nodule("B", [_roi(4.0, second)])],
                 [_nodule("C", [_roi(4.0, first)])])
    groups = sorted(sorted(a.nodule_id for a in c.annotations) for c in case.nodules)
    assert groups == [["A", "C"], ["B"]]
    # with only the same reader's pair, touching still never merges
    alone = cluster_annotations([a for a in case.annotations if a.reader == 0])
    assert [c.n_readers for c in alone] == [1, 1]


def test_far_apart_nodules_are_separate_and_ignored_below_min_readers(tmp_path, small_ct):
    case = _case(tmp_path, small_ct, [_nodule("near", [_roi(6.0, _square(5, 5, 6))])],
                 [_nodule("far", [_roi(6.0, _square(40, 40, 6))])])
    assert [c.n_readers for c in case.nodules] == [1, 1]
    nodules, ignored = case.reference_findings()
    assert nodules == [] and len(ignored) == 2
    assert not case.label_map().any() and case.label_map(min_readers=1, level=1).sum() == 3 * 2 * 49


def test_small_nodule_non_nodule_exclusion_and_skipped_slices(tmp_path, small_ct):
    point = ("<unblindedReadNodule><noduleID>tiny</noduleID><roi><imageZposition>8</imageZposition>"
             "<inclusion>TRUE</inclusion><edgeMap><xCoord>30</xCoord><yCoord>20</yCoord></edgeMap></roi>"
             "</unblindedReadNodule>")
    non = ("<nonNodule><nonNoduleID>nn</nonNoduleID><imageZposition>10</imageZposition>"
           "<locus><xCoord>5</xCoord><yCoord>6</yCoord></locus></nonNodule>")
    holed = _nodule("holed", [_roi(2.0, _square(10, 10, 10)), _roi(2.0, _square(13, 13, 4), inclusion=False),
                              _roi(40.0, _square(10, 10, 10))])  # z = 40 mm: past the last slice (18 mm)
    case = _case(tmp_path, small_ct, [point, non, holed])
    kinds = {p.kind: p for p in case.points}
    assert kinds["small_nodule"].center_mm == (30.0, 20.0, 8.0)
    assert kinds["non_nodule"].center_mm == (5.0, 6.0, 10.0)
    assert case.skipped == 1
    # 11x11 square minus the 5x5 hole (its outline included)
    assert case.annotations[0].mask.sum() == 121 - 25
    _, ignored = case.reference_findings()
    assert sorted(ignored) == sorted([((30.0, 20.0, 8.0), 0.0), ((5.0, 6.0, 10.0), 0.0)] +
                                     [(c.centroid_mm, c.diameter_mm) for c in case.nodules])


def test_feet_first_and_mirrored_series_land_on_the_right_voxels(tmp_path):
    # file slice k lies at z = 100 - 2k (feet first) and column c at x = -c: the canonical LPS
    # array is flipped in z and x, so file index (c, r, k) is canonical (z=9-k, y=r, x=31-c)
    img = sitk.Image(32, 32, 10, sitk.sitkFloat32)
    img.SetSpacing((1.0, 1.0, 2.0))
    img.SetOrigin((0.0, 0.0, 100.0))
    img.SetDirection((-1, 0, 0, 0, 1, 0, 0, 0, -1))
    ct = CTImage.from_sitk(img, is_hu=True)
    assert ct.origin == (-31.0, 0.0, 82.0)
    case = _case(tmp_path, ct, [_nodule("n", [_roi(96.0, _square(2, 3, 4)),     # file slice 2
                                               _roi(100.8, _square(2, 3, 4)),    # 0.8 mm off slice 0: kept
                                               _roi(101.2, _square(2, 3, 4))])])  # 1.2 mm > half spacing
    ann = case.annotations[0]
    assert case.skipped == 1
    assert ann.box == (slice(7, 10), slice(3, 8), slice(25, 30))
    assert ann.mask[0].all() and not ann.mask[1].any() and ann.mask[2].all()
    assert ann.centroid_mm == pytest.approx((-4.0, 5.0, 98.0))
    np.testing.assert_allclose(ct.index_of_points(ct.physical_points(np.array([[7, 3, 25]]))), [[7, 3, 25]])


# ---- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, words", [
    ("<LidcReadMessage><readingSession></LidcReadMessage>", "malformed XML at line 1"),
    ("<note><to>x</to></note>", "not an LIDC XML read (root element <note>"),
    ("", "malformed XML at line 1"),
    (_xml([_nodule("n", ["<roi><imageZposition>1</imageZposition><edgeMap><xCoord>3</xCoord></edgeMap></roi>"])]),
     "missing <yCoord>"),
    (_xml([_nodule("n", ["<roi><edgeMap><xCoord>3</xCoord><yCoord>3</yCoord></edgeMap></roi>"])]),
     "missing <imageZposition>"),
    (_xml(["<nonNodule><nonNoduleID>q</nonNoduleID><imageZposition>1</imageZposition></nonNodule>"]),
     "missing <locus>"),
])
def test_bad_xml_is_one_clear_error_naming_the_file(tmp_path, text, words):
    bad = tmp_path / "bad_read.xml"
    bad.write_text(text)
    with pytest.raises(LungsegError, match="bad_read.xml") as err:
        read_lidc_xml(bad)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_any_namespace_or_none_is_accepted(tmp_path):
    body = _xml([_nodule("n", [_roi(2.0, _square(1, 1, 3))])], uid="1.2.3")
    for i, text in enumerate([body, body.replace(' xmlns="http://www.nih.gov"', ""),
                              body.replace("http://www.nih.gov", "urn:other")]):
        (tmp_path / f"{i}.xml").write_text(text)
        read = read_lidc_xml(tmp_path / f"{i}.xml")
        assert read.series_uid == "1.2.3" and len(read.nodules) == 1 and read.nodules[0].malignancy == 3


def test_missing_xml_and_case_without_dicom(tmp_path):
    with pytest.raises(LungsegError, match="nope.xml"):
        read_lidc_xml(tmp_path / "nope.xml")
    (tmp_path / "read.xml").write_text(_xml())
    with pytest.raises(LungsegError, match="no DICOM series"):
        load_lidc_case(tmp_path)


def test_lidc_cases_finds_case_folders(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "069.xml").write_text("x")
    (tmp_path / "a" / "series.zip").write_bytes(b"")
    (tmp_path / "b" / "study" / "series").mkdir(parents=True)
    (tmp_path / "b" / "study" / "series" / "1.dcm").write_bytes(b"")
    (tmp_path / "b" / "study" / "series" / "070.xml").write_text("x")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "only.xml").write_text("x")
    assert list(lidc_cases(tmp_path)) == [tmp_path / "a", tmp_path / "b" / "study" / "series"]


# ---- the real LIDC-IDRI-0003 -------------------------------------------------------------------
@pytest.fixture(scope="module")
def case():
    if not LIDC_XML.exists():
        pytest.skip(f"shared data not available: {LIDC_DIR}")  # (skipif cannot see a fixture)
    return load_lidc_case(LIDC_DIR)  # the one DICOM read of this module


@pytest.mark.shared
@needs_lidc
def test_real_xml_counts():
    read = read_lidc_xml(LIDC_XML)
    # grep -c "<readingSession>" -> 4
    assert read.n_readers == 4
    assert read.series_uid == "1.3.6.1.4.1.14519.5.2.1.6279.6001.170706757615202213033480003264"
    # grep -n "<readingSession\|<unblindedReadNodule" : sessions start at lines 17, 3642, 6825,
    # 10438 with 3, 3, 3, 4 unblindedReadNodule; grep -c "<characteristics>" -> 13, all rated
    assert [len(read.nodules_of(r)) for r in range(4)] == [3, 3, 3, 4]
    # grep -c "<nonNodule>" -> 38 (7 + 7 + 15 + 9); no unrated single-point nodule in this file
    assert len(read.points) == 38 and {p.kind for p in read.points} == {"non_nodule"}
    assert [sum(p.reader == r for p in read.points) for r in range(4)] == [7, 7, 15, 9]
    # grep -c "<roi>" -> 76; grep -c "<edgeMap>" -> 4412; awk roi count per nodule in file order
    rois = [len(n.rois) for n in read.nodules]
    assert rois == [7, 4, 5, 7, 5, 2, 5, 4, 7, 10, 4, 8, 8] and sum(rois) == 76
    assert sum(len(r.points_xy) for n in read.nodules for r in n.rois) == 4412
    # sed -n 20,60p: reader 0 "Nodule 001", first roi z -199.000000, first edgeMap (363, 338);
    # awk over that roi: 46 edgeMap points, the last repeats the first; malignancy 5 (line 31)
    first = read.nodules[0]
    roi = first.rois[0]
    assert first.nodule_id == "Nodule 001" and first.malignancy == 5
    assert roi.z_mm == -199.0 and roi.inclusion and len(roi.points_xy) == 46
    assert roi.points_xy[0].tolist() == [363, 338] and roi.points_xy[-1].tolist() == [363, 338]
    # grep -n "<malignancy>": 5 4 4 | 5 5 4 | 3 3 3 | 4 2 2 2
    assert [n.malignancy for n in read.nodules] == [5, 4, 4, 5, 5, 4, 3, 3, 3, 4, 2, 2, 2]
    # lines 3578-3586: first non-nodule at z -91.5, locus (179, 341)
    assert (read.points[0].z_mm, read.points[0].xy) == (-91.5, (179, 341))


@pytest.mark.shared
@needs_lidc
def test_truncated_real_xml(tmp_path):
    cut = tmp_path / "LIDC-IDRI-0003.xml"
    cut.write_bytes(LIDC_XML.read_bytes()[:5000])
    with pytest.raises(LungsegError, match=r"LIDC-IDRI-0003\.xml: not a readable LIDC XML read \(truncated"):
        read_lidc_xml(cut)


@pytest.mark.shared
def test_real_roi_area_and_diameter(case):
    ann = case.annotations[0]  # reader 0 "Nodule 001"
    assert ann.nodule_id == "Nodule 001" and ann.box[0].start == 72  # z -199 = -379 + 72 * 2.5
    # its first roi: an 8-connected closed chain of B = 45 distinct points (awk: no step > 1
    # pixel), shoelace area A = 170.5 px. Pick's theorem: interior + boundary = A + B/2 + 1 = 194
    # pixels, interior alone = A - B/2 + 1 = 149.
    assert ann.mask[0].sum() == 149  # the default leaves the outline out (pylidc, LIDC protocol)
    outer = load_lidc_case(LIDC_XML, ct=case.ct, include_outline=True).annotations[0]
    assert outer.box[0].start == 72 and outer.mask[0].sum() == 194
    # awk brute force over its 7 rois: largest outline chord 37 pixels (roi at z -189) * 0.820312 mm
    assert ann.diameter_mm == pytest.approx(37 * 0.820312, abs=1e-4)
    # mean edgeMap point of this nodule (awk): column 366.9, row 349.6 -> LPS x = -228.8 + 366.9 * 0.8203
    assert ann.centroid_mm[0] == pytest.approx(72.2, abs=1.0) and ann.centroid_mm[1] == pytest.approx(76.8, abs=1.0)


@pytest.mark.shared
def test_real_consensus_clusters(case):
    assert case.skipped == 0
    multi = [n for n in case.nodules if n.n_readers >= 2]
    single = [n for n in case.nodules if n.n_readers == 1]
    # by hand (awk: mean edgeMap column/row and z range of each nodule):
    #   ~(367, 350), z -199..-184: Nodule 001, IL057_130591, MI014_16588, 0 (0 to -204..-181.5)
    #   ~(308, 198), z -176.5..-169: Nodule 003, IL057_130602, MI014_16599, 8
    #   ~(221, 219), z -176.5..-159: Nodule 002, IL057_130598, MI014_16595, 9
    #   reader 4's "12": ~(369, 346) but z -224..-206.5, below "0" of the same reader
    groups = sorted(sorted(a.nodule_id for a in n.annotations) for n in multi)
    assert groups == [["0", "IL057_130591", "MI014_16588", "Nodule 001"],
                      ["8", "IL057_130602", "MI014_16599", "Nodule 003"],
                      ["9", "IL057_130598", "MI014_16595", "Nodule 002"]]
    assert [n.n_readers for n in multi] == [4, 4, 4]
    assert [a.nodule_id for n in single for a in n.annotations] == ["12"]
    by_size = sorted(multi, key=lambda n: -n.diameter_mm)
    assert [round(n.diameter_mm, 1) for n in by_size] == pytest.approx([31.0, 15.0, 13.3], abs=0.3)
    assert sorted(by_size[0].malignancy_ratings) == [3, 4, 5, 5]  # grep <malignancy> per nodule
    labels = case.label_map()
    assert labels.dtype == np.uint8 and set(np.unique(labels)) == {0, 3}
    for n in multi:
        box, mask = n.consensus(2)
        idx = np.argwhere(mask) + [s.start for s in box]
        centre = case.ct.index_of_points(np.array([n.centroid_mm]))[0]
        assert np.all(centre >= 0) and np.all(centre < np.array(case.ct.shape) - 1)
        assert labels[tuple(idx.T)].min() == 3
        # placement check independent of the XML: the consensus is denser than the 3-voxel ring
        ring = ndi.binary_dilation(mask, iterations=3) & ~mask
        assert case.ct.array[box][mask].mean() > case.ct.array[box][ring].mean() + 150
    nodules, ignored = case.reference_findings()
    assert len(nodules) == 3 and len(ignored) == 1 + 38


@pytest.mark.shared
def test_real_case_found_by_lidc_cases(case):
    assert list(lidc_cases(LIDC_DIR.parent)) == [LIDC_DIR]
    assert isinstance(case.nodules[0], ConsensusNodule)


@pytest.mark.shared
def test_lidc_folders_are_a_training_source(case):
    """`type: lidc` in a config: whole CT in HU, label 3 = the >= 2-reader consensus."""
    from lungseg.data.sources import load_source

    (scan,) = load_source({"type": "lidc", "path": str(LIDC_DIR)})
    assert scan.case_id == "LIDC-IDRI-0003" and scan.patient_id == "LIDC-IDRI-0003" and scan.is_hu
    image, label = scan.load()
    assert image.shape == case.ct.shape and scan.spacing == pytest.approx(case.ct.spacing)
    np.testing.assert_array_equal(label, case.label_map())
    assert set(np.unique(label)) == {0, 3} and scan.label_names == {3: "nodule"}
