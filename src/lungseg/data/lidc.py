"""LIDC-IDRI reads (the `LidcReadMessage` XML of up to four radiologists) placed on their CT.

Whole-scan nodule evaluation needs, per scan, the physical nodules the readers agreed on, their
size, and the findings a detector may hit without being wrong (small nodules, non-nodules,
nodules too few readers marked). This module builds that from an LIDC XML plus its DICOM series:

    read_lidc_xml(path)            -> LidcRead: per reader, >= 3 mm nodules (outlines) and points
    place_read(read, ct)           -> per-reader NoduleAnnotation masks on the canonical grid,
                                      point findings with LPS centres, count of skipped rois
    cluster_annotations(anns)      -> ConsensusNodule groups (pylidc's rule)
    load_lidc_case(path)           -> LidcCase with label_map() and reference_findings()
    lidc_cases(root)               -> the case folders under a root

No pylidc dependency; where pylidc has a rule (diameter, clustering) it is followed. Only the
unblinded reads are used (LIDC's final reads); blinded-read elements are ignored.

The XML's outlines are in DICOM pixel (column, row) of the slice at `imageZposition`; they are
mapped through the file's own geometry to LPS mm and from there to the canonical array, so
feet-first or flipped series land right (index k of the file is not index k of the array).

Outline pixels: the LIDC protocol asked readers to draw the outline just outside the lesion, so
by default (`include_outline=False`, as pylidc's `boolean_mask()`) the edgeMap pixels are not
nodule; `include_outline=True` counts them too (about one pixel ring more per slice).
"""
from __future__ import annotations

import logging
import os
import statistics
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from scipy.spatial.distance import pdist
from skimage.draw import polygon as draw_polygon

from ..errors import LungsegError
from ..io.ctimage import CTImage

log = logging.getLogger("lungseg.data")

LIDC_ROOT = "LidcReadMessage"
NODULE_LABEL = 3  # lungseg's canonical nodule code (see lungseg.evaluation.classes)
Box = tuple[slice, slice, slice]


# ---- the read, as written in the XML ---------------------------------------------------------
@dataclass(frozen=True)
class Roi:
    """One slice of a reader's outline."""

    z_mm: float  # imageZposition: the slice's patient z (mm)
    sop_uid: str
    inclusion: bool  # False: the outline encloses a hole to subtract
    points_xy: np.ndarray  # (N, 2) int: DICOM pixel (column, row) of the edgeMap points


@dataclass
class ReaderNodule:
    """A nodule >= 3 mm as one reader outlined it."""

    reader: int  # index of the readingSession, 0..n-1
    nodule_id: str
    rois: list[Roi]
    characteristics: dict[str, int] = field(default_factory=dict)

    @property
    def malignancy(self) -> int | None:
        return self.characteristics.get("malignancy")


@dataclass(frozen=True)
class PointFinding:
    """A nodule < 3 mm or a non-nodule >= 3 mm: one reader's single point."""

    reader: int
    kind: str  # "small_nodule" or "non_nodule"
    finding_id: str
    z_mm: float
    sop_uid: str
    xy: tuple[int, int]  # DICOM pixel (column, row)
    center_mm: tuple[float, float, float] | None = None  # LPS, once placed on a CT


@dataclass
class LidcRead:
    path: Path
    series_uid: str | None
    study_uid: str | None
    reader_ids: list[str]  # servicingRadiologistID per readingSession ("" when absent)
    nodules: list[ReaderNodule]
    points: list[PointFinding]

    @property
    def n_readers(self) -> int:
        return len(self.reader_ids)

    def nodules_of(self, reader: int) -> list[ReaderNodule]:
        return [n for n in self.nodules if n.reader == reader]


# ---- XML parsing -----------------------------------------------------------------------------
def read_lidc_xml(path) -> LidcRead:
    """Parse an LIDC `LidcReadMessage`. Every problem is one LungsegError naming the file."""
    path = Path(path)
    root = _parse_root(path)
    header = root.find("ResponseHeader")
    nodules, points, reader_ids = [], [], []
    for reader, session in enumerate(root.findall("readingSession")):
        reader_ids.append(_text(session, "servicingRadiologistID") or "")
        n, p = _parse_session(session, reader, path)
        nodules += n
        points += p
    return LidcRead(path, _text(header, "SeriesInstanceUid"), _text(header, "StudyInstanceUID"),
                    reader_ids, nodules, points)


def _fail(path: Path, message: str) -> LungsegError:
    return LungsegError(f"{path}: {message}")


def _parse_root(path: Path) -> ET.Element:
    if not path.is_file():
        raise _fail(path, "LIDC XML read not found")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise _fail(path, f"not a readable LIDC XML read (truncated or malformed XML at line "
                          f"{e.position[0]})") from None
    except OSError as e:
        raise _fail(path, f"cannot read the file ({e.strerror or e})") from None
    for el in root.iter():  # LIDC files use xmlns="http://www.nih.gov"; any namespace is dropped
        if isinstance(el.tag, str):
            el.tag = el.tag.rsplit("}", 1)[-1]
    if root.tag != LIDC_ROOT:
        raise _fail(path, f"not an LIDC XML read (root element <{root.tag}>, expected <{LIDC_ROOT}>)")
    return root


def _text(el: ET.Element | None, tag: str) -> str | None:
    child = None if el is None else el.find(tag)
    if child is None or child.text is None or not child.text.strip():
        return None
    return child.text.strip()


def _number(el: ET.Element, tag: str, kind, path: Path, where: str):
    value = _text(el, tag)
    if value is None:
        raise _fail(path, f"{where}: missing <{tag}>")
    try:
        return kind(float(value)) if kind is int else kind(value)
    except ValueError:
        raise _fail(path, f"{where}: <{tag}> is not a number ({value[:40]!r})") from None


def _xy(el: ET.Element, path: Path, where: str) -> tuple[int, int]:
    return _number(el, "xCoord", int, path, where), _number(el, "yCoord", int, path, where)


def _parse_roi(el: ET.Element, path: Path, where: str) -> Roi:
    z = _number(el, "imageZposition", float, path, where)
    edges = el.findall("edgeMap")
    if not edges:
        raise _fail(path, f"{where}: roi at z={z:g} has no edgeMap coordinates")
    points = np.array([_xy(e, path, where) for e in edges], dtype=np.int64)
    inclusion = (_text(el, "inclusion") or "TRUE").upper() != "FALSE"  # LIDC writes TRUE/FALSE
    return Roi(z, _text(el, "imageSOP_UID") or "", inclusion, points)


def _characteristics(el: ET.Element | None) -> dict[str, int]:
    out = {}
    for child in [] if el is None else el:
        try:
            out[child.tag] = int(float(child.text))
        except (TypeError, ValueError):  # an empty rating is "not rated", not a broken file
            continue
    return out


def _parse_session(session: ET.Element, reader: int, path: Path):
    nodules, points = [], []
    for i, el in enumerate(session.findall("unblindedReadNodule")):
        nid = _text(el, "noduleID") or f"#{i + 1}"
        where = f"reader {reader + 1} nodule {nid!r}"
        rois = [_parse_roi(r, path, where) for r in el.findall("roi")]
        chars = _characteristics(el.find("characteristics"))
        # LIDC marks < 3 mm nodules with one point and no ratings; >= 3 mm ones are outlined and rated
        if chars or any(len(r.points_xy) > 1 for r in rois):
            nodules.append(ReaderNodule(reader, nid, rois, chars))
        elif rois:
            r = rois[0]
            points.append(PointFinding(reader, "small_nodule", nid, r.z_mm, r.sop_uid,
                                       tuple(int(v) for v in r.points_xy[0])))
        else:
            raise _fail(path, f"{where}: no roi (no coordinates)")
    for i, el in enumerate(session.findall("nonNodule")):
        nid = _text(el, "nonNoduleID") or f"#{i + 1}"
        where = f"reader {reader + 1} non-nodule {nid!r}"
        locus = el.find("locus")
        if locus is None:
            raise _fail(path, f"{where}: missing <locus> coordinates")
        points.append(PointFinding(reader, "non_nodule", nid, _number(el, "imageZposition", float, path, where),
                                   _text(el, "imageSOP_UID") or "", _xy(locus, path, where)))
    return nodules, points


# ---- placement on the CT grid ----------------------------------------------------------------
@dataclass(frozen=True)
class VoxelGrid:
    """The canonical grid of a CT without its voxels (what an annotation needs to measure itself)."""

    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]

    @classmethod
    def of(cls, ct: CTImage) -> "VoxelGrid":
        return cls(ct.spacing, ct.origin, ct.direction)

    # CTImage's conversions read only spacing/origin/direction, so they serve this grid as well
    physical_points = CTImage.physical_points
    index_of_points = CTImage.index_of_points

    @property
    def voxel_volume_ml(self) -> float:
        return float(np.prod(self.spacing)) / 1000.0


def pixels_to_lps(ct: CTImage, cols, rows, z_mm: float) -> np.ndarray:
    """(N, 3) LPS mm of DICOM pixels (column, row) on the file slice whose patient z is z_mm.

    column = ITK index x, row = ITK index y of the file's own geometry (`ct.original`); the
    slice index is solved from z so that the points lie exactly at z_mm."""
    g = ct.original
    if g is None:
        raise LungsegError(f"{ct.source or 'CT'}: the file's own geometry is unknown; cannot place LIDC outlines")
    step = np.asarray(g.direction, float).reshape(3, 3) * np.asarray(g.spacing, float)  # LPS per index step
    if abs(step[2, 2]) < 1e-6 * np.abs(step).max():
        raise LungsegError(f"{ct.source or 'CT'}: not an axial series; LIDC outlines cannot be placed")
    ij = np.column_stack([np.asarray(cols, float), np.asarray(rows, float)])
    k = (z_mm - g.origin[2] - ij @ step[2, :2]) / step[2, 2]
    index = np.column_stack([ij, k])
    return np.asarray(g.origin, float) + index @ step.T


def _voxels(ct: CTImage, lps: np.ndarray) -> np.ndarray | None:
    """Canonical (z, y, x) int voxels of LPS points; None when their slice is not in the CT
    (nearest slice further than half a slice spacing). In-plane points outside are dropped."""
    idx = ct.index_of_points(lps)
    near = np.rint(idx)
    if np.any(np.abs(idx[:, 0] - near[:, 0]) > 0.5 + 1e-3) or near[:, 0].min() < 0 or near[:, 0].max() >= ct.shape[0]:
        return None
    near = near.astype(np.int64)
    inside = np.all((near >= 0) & (near < np.asarray(ct.shape)), axis=1)
    return near[inside]


def _roi_region(ct: CTImage, roi: Roi, include_outline: bool) -> np.ndarray | None:
    """Canonical voxels of one roi: the filled polygon (+ the outline pixels themselves)."""
    rows_cols = (ct.original.size[1], ct.original.size[0])
    cols, rows = roi.points_xy[:, 0], roi.points_xy[:, 1]
    rr, cc = draw_polygon(rows, cols, shape=rows_cols)
    if include_outline:
        rr, cc = np.concatenate([rr, rows]), np.concatenate([cc, cols])
    else:  # pylidc's default: the outline was drawn just outside the lesion
        keep = ~np.isin(rr * rows_cols[1] + cc, rows * rows_cols[1] + cols)
        rr, cc = rr[keep], cc[keep]
    if rr.size == 0:  # e.g. a one-point "outline" when outline pixels are excluded
        near = _voxels(ct, pixels_to_lps(ct, cols[:1], rows[:1], roi.z_mm))
        return None if near is None else near[:0]
    return _voxels(ct, pixels_to_lps(ct, cc, rr, roi.z_mm))


@dataclass
class NoduleAnnotation:
    """One reader's >= 3 mm nodule on the canonical grid: a bounding box and the mask inside it."""

    reader: int
    nodule_id: str
    characteristics: dict[str, int]
    box: Box  # canonical (z, y, x) slices
    mask: np.ndarray  # bool, shape of the box
    outlines_mm: list[np.ndarray] = field(default_factory=list, repr=False)  # per placed roi, LPS (N, 3)
    grid: VoxelGrid | None = field(default=None, repr=False)

    @property
    def malignancy(self) -> int | None:
        return self.characteristics.get("malignancy")

    @property
    def voxels(self) -> np.ndarray:
        """(N, 3) canonical (z, y, x) indices of the mask voxels."""
        return np.argwhere(self.mask) + np.array([s.start for s in self.box])

    @property
    def centroid_mm(self) -> tuple[float, float, float]:
        return tuple(float(v) for v in self.grid.physical_points(self.voxels).mean(axis=0))

    @property
    def volume_ml(self) -> float:
        return int(self.mask.sum()) * self.grid.voxel_volume_ml

    @property
    def diameter_mm(self) -> float:
        """pylidc's `diameter`: the largest distance between two outline points of one slice."""
        per_slice = [pdist(p).max() for p in self.outlines_mm if len(p) > 1]
        return float(max(per_slice, default=0.0))


def _box_of(voxels: np.ndarray) -> Box:
    lo, hi = voxels.min(axis=0), voxels.max(axis=0) + 1
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


def rasterize_nodule(nodule: ReaderNodule, ct: CTImage, include_outline: bool = False):
    """(NoduleAnnotation or None when nothing of it lies in the CT, number of rois skipped)."""
    included, excluded, outlines, skipped = [], [], [], 0
    for roi in nodule.rois:
        # a hole's own outline is always removed with it (as pylidc does)
        region = _roi_region(ct, roi, include_outline or not roi.inclusion)
        if region is None:
            skipped += 1
            continue
        (included if roi.inclusion else excluded).append(region)
        outlines.append(pixels_to_lps(ct, roi.points_xy[:, 0], roi.points_xy[:, 1], roi.z_mm))
    if not included or not sum(len(v) for v in included):
        return None, skipped
    voxels = np.concatenate(included)
    box = _box_of(voxels)
    start = np.array([s.start for s in box])
    mask = np.zeros([s.stop - s.start for s in box], dtype=bool)
    mask[tuple((voxels - start).T)] = True
    for hole in excluded:  # as pylidc: all inclusions first, then every exclusion subtracts
        hole = hole - start
        hole = hole[np.all((hole >= 0) & (hole < mask.shape), axis=1)]
        mask[tuple(hole.T)] = False
    if not mask.any():
        return None, skipped
    return NoduleAnnotation(nodule.reader, nodule.nodule_id, dict(nodule.characteristics), box, mask,
                            outlines, VoxelGrid.of(ct)), skipped


def place_point(point: PointFinding, ct: CTImage) -> PointFinding | None:
    """The finding with its LPS centre, or None when its slice is not in the CT."""
    lps = pixels_to_lps(ct, [point.xy[0]], [point.xy[1]], point.z_mm)
    if _voxels(ct, lps) is None:
        return None
    return replace(point, center_mm=tuple(float(v) for v in lps[0]))


def place_read(read: LidcRead, ct: CTImage, include_outline: bool = False):
    """(annotations, placed points, number of rois/points skipped because their z matches no slice)."""
    annotations, points, skipped = [], [], 0
    for nodule in read.nodules:
        ann, n = rasterize_nodule(nodule, ct, include_outline)
        skipped += n
        if ann is not None:
            annotations.append(ann)
    for point in read.points:
        placed = place_point(point, ct)
        skipped += placed is None
        if placed is not None:
            points.append(placed)
    if skipped:
        log.warning("%s: %d roi(s)/point(s) lie on no slice of %s and were skipped", read.path.name, skipped,
                    ct.source or "the CT")
    return annotations, points, skipped


# ---- grouping readers' nodules ---------------------------------------------------------------
@dataclass
class ConsensusNodule:
    """The annotations (of different readers) of one physical nodule."""

    annotations: list[NoduleAnnotation]

    @property
    def readers(self) -> list[int]:
        return sorted({a.reader for a in self.annotations})

    @property
    def n_readers(self) -> int:
        return len(self.readers)

    @property
    def centroid_mm(self) -> tuple[float, float, float]:
        return tuple(float(v) for v in np.mean([a.centroid_mm for a in self.annotations], axis=0))

    @property
    def diameter_mm(self) -> float:
        return float(np.mean([a.diameter_mm for a in self.annotations]))

    @property
    def malignancy_ratings(self) -> list[int]:
        return [a.malignancy for a in self.annotations if a.malignancy is not None]

    @property
    def median_malignancy(self) -> float | None:
        r = self.malignancy_ratings
        return float(statistics.median(r)) if r else None

    @property
    def mean_malignancy(self) -> float | None:
        r = self.malignancy_ratings
        return float(np.mean(r)) if r else None

    @property
    def box(self) -> Box:
        lo = np.min([[s.start for s in a.box] for a in self.annotations], axis=0)
        hi = np.max([[s.stop for s in a.box] for a in self.annotations], axis=0)
        return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))

    def reader_counts(self) -> tuple[Box, np.ndarray]:
        """(box, uint8 array): how many readers marked each voxel of the cluster's box."""
        box = self.box
        start = np.array([s.start for s in box])
        per_reader = {r: np.zeros([s.stop - s.start for s in box], dtype=bool) for r in self.readers}
        for a in self.annotations:  # OR per reader first: one reader never counts twice
            where = tuple(slice(s.start - o, s.stop - o) for s, o in zip(a.box, start))
            per_reader[a.reader][where] |= a.mask
        return box, np.sum(list(per_reader.values()), axis=0).astype(np.uint8)

    def consensus(self, level: int = 2) -> tuple[Box, np.ndarray]:
        """(box, bool mask) of the voxels marked by >= level readers of this cluster."""
        box, counts = self.reader_counts()
        return box, counts >= level


def _min_distance(a: NoduleAnnotation, b: NoduleAnnotation, limit: float) -> float:
    """Smallest distance (mm) between the two outlines; inf when it surely exceeds limit."""
    p, q = np.concatenate(a.outlines_mm), np.concatenate(b.outlines_mm)
    gap = np.maximum(0, np.maximum(p.min(0) - q.max(0), q.min(0) - p.max(0)))
    if np.linalg.norm(gap) > limit:  # bounding boxes further apart: skip the point search
        return np.inf
    return float(cKDTree(q).query(p, k=1)[0].min())


def cluster_annotations(annotations: list[NoduleAnnotation], tol: float | None = None, factor: float = 0.9,
                        min_tol: float = 0.1) -> list[ConsensusNodule]:
    """Group annotations into physical nodules the way pylidc's `cluster_annotations` does.

    Two annotations are adjacent when their outlines come within tol mm (default: the largest
    in-plane pixel spacing); clusters are the connected components. A cluster holding two
    annotations of one reader is regrouped with tol * factor until it holds none (given up
    below min_tol mm: such a cluster is kept and logged). Sorted by centroid z (pylidc's order)."""
    if not annotations:
        return []
    if tol is None:
        tol = max(annotations[0].grid.spacing[:2])
    n = len(annotations)
    dist = np.full((n, n), np.inf)
    for i in range(n):
        dist[i, i] = 0.0
        for j in range(i + 1, n):
            dist[i, j] = dist[j, i] = _min_distance(annotations[i], annotations[j], tol)
    groups = _split(np.arange(n), dist, [a.reader for a in annotations], tol, factor, min_tol)
    clusters = [ConsensusNodule([annotations[i] for i in g]) for g in groups]
    return sorted(clusters, key=lambda c: c.centroid_mm[2])


def _split(members: np.ndarray, dist: np.ndarray, readers: list[int], tol: float, factor: float,
           min_tol: float) -> list[list[int]]:
    _, labels = connected_components(dist[np.ix_(members, members)] <= tol, directed=False)
    out = []
    for label in np.unique(labels):
        group = members[labels == label]
        group_readers = [readers[i] for i in group]
        if len(set(group_readers)) == len(group_readers):
            out.append(group.tolist())
        elif tol * factor < min_tol:
            log.warning("annotations %s of one reader stay in one cluster (touching even at %.2f mm)",
                        group.tolist(), tol)
            out.append(group.tolist())
        else:  # only this cluster is regrouped; the others keep the wider tolerance
            out += _split(group, dist, readers, tol * factor, factor, min_tol)
    return out


# ---- a case: CT + read -----------------------------------------------------------------------
@dataclass
class LidcCase:
    """One LIDC series with its read placed on it.

    `nodules` are all clusters (any number of readers); `points` are the < 3 mm nodules and
    non-nodules with their LPS centres; `skipped` counts rois/points on no slice of the CT."""

    name: str
    ct: CTImage
    read: LidcRead
    annotations: list[NoduleAnnotation]
    nodules: list[ConsensusNodule]
    points: list[PointFinding]
    skipped: int = 0

    def label_map(self, min_readers: int = 2, level: int = 2) -> np.ndarray:
        """uint8 (z, y, x) map: 3 (nodule) where the consensus (>= level readers) of a cluster
        marked by >= min_readers readers lies, 0 elsewhere."""
        labels = np.zeros(self.ct.shape, dtype=np.uint8)
        for nodule in self.nodules:
            if nodule.n_readers >= min_readers:
                box, mask = nodule.consensus(level)
                labels[box][mask] = NODULE_LABEL
        return labels

    def reference_findings(self, min_readers: int = 2):
        """(nodules, ignored), each a list of (centre_mm LPS (x, y, z), diameter_mm).

        nodules: clusters marked by >= min_readers readers (LUNA16 used 3 of 4). ignored: the
        clusters with fewer readers, every < 3 mm nodule and every non-nodule point (diameter 0:
        no size was recorded; the caller picks a radius). LUNA16 counts a candidate near an
        ignored finding as neither hit nor false positive; its script takes 10 mm for findings
        without a size."""
        nodules = [(n.centroid_mm, n.diameter_mm) for n in self.nodules if n.n_readers >= min_readers]
        ignored = [(n.centroid_mm, n.diameter_mm) for n in self.nodules if n.n_readers < min_readers]
        ignored += [(p.center_mm, 0.0) for p in self.points]
        return nodules, ignored


def load_lidc_case(path, ct: CTImage | None = None, include_outline: bool = False,
                   tol: float | None = None) -> LidcCase:
    """A case from a folder holding one DICOM series (a .zip or .dcm files) and one .xml, or
    from the .xml itself (its DICOM next to it). `ct` skips reading the DICOM (it must be the
    same series: the XML's SeriesInstanceUid is checked when both carry one)."""
    from ..io import read_ct

    path = Path(path)
    if not path.exists():
        raise LungsegError(f"LIDC case not found: {path}")
    xml = path if path.is_file() else _one_xml(path)
    read = read_lidc_xml(xml)
    if ct is None:
        ct = read_ct(_dicom_next_to(xml.parent))
    ct_uid = ct.meta.get("series_uid")
    if read.series_uid and ct_uid and read.series_uid != ct_uid:
        raise LungsegError(f"{xml}: read of series {read.series_uid}, but the CT {ct.source} is series {ct_uid}")
    annotations, points, skipped = place_read(read, ct, include_outline)
    return LidcCase(xml.parent.name if path.is_file() else path.name, ct, read, annotations,
                    cluster_annotations(annotations, tol), points, skipped)


def _one_xml(folder: Path) -> Path:
    xmls = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".xml")
    if len(xmls) != 1:
        raise LungsegError(f"{folder}: expected one LIDC .xml read, found {len(xmls)}")
    return xmls[0]


def _has_dcm(folder: Path) -> bool:
    with os.scandir(folder) as it:
        return any(e.is_file() and e.name.lower().endswith(".dcm") for e in it)


def _dicom_next_to(folder: Path) -> Path:
    """The DICOM series of a case folder: its one .zip, its own .dcm files, or its one
    sub-folder of .dcm files."""
    zips = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".zip")
    if len(zips) > 1:
        raise LungsegError(f"{folder}: {len(zips)} .zip files; expected one DICOM series per case")
    if zips:
        return zips[0]
    if _has_dcm(folder):
        return folder
    subs = [p for p in sorted(folder.iterdir()) if p.is_dir() and _has_dcm(p)]
    if len(subs) == 1:
        return subs[0]
    raise LungsegError(f"{folder}: no DICOM series (a .zip or a folder of .dcm files) next to the LIDC read"
                       if not subs else f"{folder}: {len(subs)} DICOM folders; expected one series per case")


def _is_case(folder: Path) -> bool:
    try:
        entries = list(folder.iterdir())
    except OSError:
        return False
    files = [p for p in entries if p.is_file()]
    if not any(p.suffix.lower() == ".xml" for p in files):
        return False
    return (any(p.suffix.lower() in (".zip", ".dcm") for p in files)
            or any(p.is_dir() and _has_dcm(p) for p in entries))


def lidc_cases(root) -> Iterator[Path]:
    """Case folders under root (root included), in sorted order; a case folder is not searched further."""
    root = Path(root)
    if not root.is_dir():
        raise LungsegError(f"not a folder: {root}")
    if _is_case(root):
        yield root
        return
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        yield from lidc_cases(sub)


def lidc_scans(path, min_readers: int = 2, level: int = 2) -> list:
    """Training/evaluation source (`type: lidc` in a config): one Case per LIDC case folder under
    path, the whole CT in HU with label 3 (nodule) where >= `level` readers of a nodule that
    >= `min_readers` readers marked drew it. The DICOM and XML are read when the case is loaded."""
    from .cases import Case

    def loader(folder):
        def load():
            case = load_lidc_case(folder)
            return case.ct.array, case.label_map(min_readers=min_readers, level=level), case.ct.spacing

        return load

    cases = [Case(folder.name, _patient_of(folder.name), loader(folder), {3: "nodule"}, is_hu=True, source="lidc",
                  cache=False, meta={"folder": str(folder)})
             for folder in lidc_cases(path)]
    if not cases:
        raise LungsegError(f"no LIDC case folders (a DICOM series and its XML) under {path}")
    return cases


def _patient_of(name: str) -> str:
    """LIDC-IDRI-0003 and LIDC-IDRI-0003-2 (a second scan) are one patient."""
    import re

    m = re.match(r"(LIDC-IDRI-\d{4})", name)
    return m.group(1) if m else name
