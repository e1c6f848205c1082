"""Paths of the small sample scan that ships inside the package (CIP licence, see data/README.md)."""
from pathlib import Path

DATA = Path(__file__).parent / "sample_data"
SAMPLE_CT = DATA / "sample_ct.nrrd"
SAMPLE_LUNG_MASK = DATA / "sample_wholelung.nrrd"
