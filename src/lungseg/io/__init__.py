"""Input/output: readers return a canonical CTImage; writers restore the file's own grid."""
from .ctimage import CANONICAL_ORIENTATION, CTImage, Geometry
from .readers import is_supported_file, looks_like_hu, read_ct, read_labels, safe_extract, suffix_of
from .writers import atomic_path, write_image, write_labels

__all__ = ["CANONICAL_ORIENTATION", "CTImage", "Geometry", "atomic_path", "is_supported_file",
           "looks_like_hu", "read_ct", "read_labels", "safe_extract", "suffix_of", "write_image", "write_labels"]
