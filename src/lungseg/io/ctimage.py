"""CTImage: the one in-memory representation of a scan that crosses module boundaries.

Arrays are float32 in (z, y, x) order and re-oriented at read time to the canonical LPS
orientation: index x runs to the patient's left, y to posterior, z to superior. So an axial
slice `array[k]` shown with matplotlib has the patient's right on the image left (radiological
view) whatever the file's orientation was. The file's own geometry is kept in `original` so
writers put masks back on exactly the input grid.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import SimpleITK as sitk

sitk.ProcessObject_SetGlobalWarningDisplay(False)  # ITK warnings would bypass our one-line errors

CANONICAL_ORIENTATION = "LPS"


@dataclass(frozen=True)
class Geometry:
    """ITK-style geometry: all tuples in (x, y, z) order, LPS physical space, millimetres."""

    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]  # 9 values, row-major, columns are the index axes

    @classmethod
    def of(cls, img: sitk.Image) -> "Geometry":
        return cls(tuple(img.GetSize()), tuple(img.GetSpacing()), tuple(img.GetOrigin()), tuple(img.GetDirection()))

    def apply_to(self, img: sitk.Image) -> sitk.Image:
        img.SetSpacing(self.spacing)
        img.SetOrigin(self.origin)
        img.SetDirection(self.direction)
        return img

    @property
    def orientation(self) -> str:
        return sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(self.direction)


@dataclass
class CTImage:
    array: np.ndarray  # float32 (z, y, x), canonical LPS orientation
    spacing: tuple[float, float, float]  # (x, y, z) mm of the canonical array
    origin: tuple[float, float, float]
    direction: tuple[float, ...]
    is_hu: bool  # values are Hounsfield units (False: "image mode", e.g. PNG or normalised data)
    source: str = ""
    format: str = ""  # dicom, nifti, nrrd, mha, mhd, png, jpg, tiff, npy, array
    is_2d: bool = False  # came from a single 2D slice file
    original: Geometry | None = None  # geometry of the file as read (for writers)
    meta: dict = field(default_factory=dict)

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_array(cls, array, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0), direction=None,
                   is_hu=True, **kwargs) -> "CTImage":
        """Wrap a (z, y, x) or (y, x) array given in canonical LPS orientation."""
        arr = np.asarray(array, dtype=np.float32)
        if arr.ndim == 2:
            arr = arr[None]
            kwargs.setdefault("is_2d", True)
        if arr.ndim != 3:
            raise ValueError(f"expected a 2D or 3D array, got shape {arr.shape}")
        direction = tuple(direction) if direction is not None else tuple(np.eye(3).ravel())
        ct = cls(arr, tuple(map(float, spacing)), tuple(map(float, origin)), direction, is_hu, **kwargs)
        if ct.original is None:
            ct.original = Geometry.of(ct.to_sitk())
        return ct

    @classmethod
    def from_sitk(cls, img: sitk.Image, is_hu: bool, **kwargs) -> "CTImage":
        """Re-orient an ITK image to canonical LPS, remembering its own geometry."""
        if img.GetDimension() == 2:
            img = sitk.JoinSeries(img)
        original = Geometry.of(img)
        fast = _canonical_view(img)
        if fast is None:  # ITK's own re-orientation (what _canonical_view reproduces for axis-aligned grids)
            canon = sitk.DICOMOrient(img, CANONICAL_ORIENTATION)
            arr = sitk.GetArrayFromImage(canon).astype(np.float32, copy=False)
            geometry = (canon.GetSpacing(), canon.GetOrigin(), canon.GetDirection())
        else:
            view, geometry = fast
            arr = np.array(view, dtype=np.float32)  # the one copy, straight from the file's pixel type
        return cls(arr, *(tuple(float(v) for v in g) for g in geometry), is_hu, original=original, **kwargs)

    def with_array(self, array: np.ndarray, **changes) -> "CTImage":
        """Same geometry, new voxel values (e.g. a preprocessed copy)."""
        return replace(self, array=np.asarray(array, dtype=np.float32), **changes)

    # ---- geometry helpers ---------------------------------------------------------------
    def to_sitk(self, array: np.ndarray | None = None) -> sitk.Image:
        """An ITK image of `array` (default: the CT) on the canonical grid."""
        img = sitk.GetImageFromArray(self.array if array is None else array)
        img.SetSpacing(self.spacing)
        img.SetOrigin(self.origin)
        img.SetDirection(self.direction)
        return img

    def to_original_grid(self, array: np.ndarray) -> sitk.Image:
        """An ITK image of a canonical-grid array on exactly the file's own grid."""
        img = self.to_sitk(array)
        if self.original is None:
            return img
        back = sitk.DICOMOrient(img, self.original.orientation)
        if tuple(back.GetSize()) != tuple(self.original.size):
            raise RuntimeError("internal error: re-orientation changed the grid size")
        return self.original.apply_to(back)  # exact values, no round-off from re-orientation

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.array.shape)

    @property
    def voxel_volume_ml(self) -> float:
        return float(np.prod(self.spacing)) / 1000.0

    @property
    def spacing_zyx(self) -> tuple[float, float, float]:
        return tuple(reversed(self.spacing))

    def physical_points(self, index_zyx: np.ndarray) -> np.ndarray:
        """LPS coordinates (mm, rows x,y,z) of (N, 3) voxel indices given in (z, y, x) order."""
        idx_xyz = np.asarray(index_zyx, dtype=np.float64)[:, ::-1]
        d = np.asarray(self.direction, dtype=np.float64).reshape(3, 3)
        return np.asarray(self.origin) + (idx_xyz * np.asarray(self.spacing)) @ d.T

    def index_of_points(self, points_lps: np.ndarray) -> np.ndarray:
        """(N, 3) continuous voxel indices in (z, y, x) order of LPS points (mm, rows x,y,z):
        the inverse of `physical_points` (round them to get voxels)."""
        d = np.asarray(self.direction, dtype=np.float64).reshape(3, 3)
        offset = np.atleast_2d(np.asarray(points_lps, dtype=np.float64)) - np.asarray(self.origin)
        # solve, not transpose: a direction matrix read from a file need not be exactly orthonormal
        idx_xyz = np.linalg.solve(d, offset.T).T / np.asarray(self.spacing)
        return idx_xyz[:, ::-1]

    def left_coordinate(self, index_zyx: np.ndarray) -> np.ndarray:
        """How far each voxel lies toward the patient's left (LPS +x), in mm."""
        return self.physical_points(index_zyx)[:, 0]


def _canonical_view(img: sitk.Image):
    """(numpy view of `img` in canonical LPS order, (spacing, origin, direction)), as
    sitk.DICOMOrient(img, "LPS") gives, but by flipping and transposing a view of the pixels
    (no ITK resampling pass, no float cast of the whole volume first: ~1 s less on a 512x512x300
    scan). None when the direction cosines are not a clean axis permutation."""
    d = np.asarray(img.GetDirection(), dtype=float).reshape(3, 3)
    axis = np.abs(d).argmax(axis=0)  # the physical axis each index axis runs along
    if sorted(axis.tolist()) != [0, 1, 2]:
        return None
    sign = np.sign(d[axis, np.arange(3)])
    order = np.argsort(axis)  # new index axis j = old index axis order[j]
    size = np.asarray(img.GetSize())
    first = np.where(sign < 0, size - 1, 0).astype(float)  # old index of the new first voxel
    origin = img.TransformContinuousIndexToPhysicalPoint(first.tolist())
    spacing = np.asarray(img.GetSpacing())[order]
    direction = (d * sign)[:, order].ravel()
    view = sitk.GetArrayViewFromImage(img)  # numpy axes (z, y, x) = ITK index axes (2, 1, 0)
    view = view[tuple(slice(None, None, -1) if sign[2 - k] < 0 else slice(None) for k in range(3))]
    view = view.transpose([2 - order[2 - k] for k in range(3)])
    return view, (spacing, origin, direction)
