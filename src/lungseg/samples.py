"""Paths of the small sample scans that ship inside the package (licences in sample_data/README.md)."""
from pathlib import Path

DATA = Path(__file__).parent / "sample_data"
SAMPLE_CT = DATA / "sample_ct.nrrd"  # CIP COPDGene 64x64x79, 4 mm: fast, for tests (no nodule search)
SAMPLE_LUNG_MASK = DATA / "sample_wholelung.nrrd"
SAMPLE_NODULE_CT = DATA / "lidc_idri_0003_nodule.nrrd"  # LIDC-IDRI-0003 crop, 0.82 mm: `make demo`
