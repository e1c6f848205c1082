"""Internal tissue labels of the phantom (SynthCase.tissue) and their nominal HU ranges.

The public label map (SynthCase.labels) is only 0 background, 1 right lung, 2 left lung,
3 nodule or tumour; `tissue` says what every voxel is made of, for users who want airways,
vessels, heart or bone masks, and for the realism tests (HU statistics per tissue).
"""
from __future__ import annotations

from enum import IntEnum


class Tissue(IntEnum):
    OUTSIDE = 0  # air around the patient (and padding outside the field of view)
    FAT = 1  # subcutaneous, mediastinal, abdominal fat
    MUSCLE = 2  # skeletal muscle, skin, chest wall, other soft tissue
    BONE = 3  # cortical bone (shell)
    MARROW = 4  # cancellous bone
    CARTILAGE = 5  # costal cartilage
    LUNG = 6  # lung parenchyma
    AIRWAY = 7  # intrapulmonary airway lumen (part of the lung label)
    AIRWAY_WALL = 8
    TRACHEA = 9  # trachea and main bronchi lumen (NOT lung)
    TRACHEA_WALL = 10
    ARTERY = 11  # pulmonary arteries
    VEIN = 12  # pulmonary veins
    HEART = 13
    GREAT_VESSEL = 14  # aorta, venae cavae, pulmonary trunk, supra-aortic vessels
    ESOPHAGUS = 15
    LIVER = 16
    SPLEEN = 17
    STOMACH = 18  # stomach contents and wall
    GAS = 19  # stomach / bowel gas
    NODULE = 20
    EFFUSION = 21  # pleural fluid (part of the lung label, lungmask R231 convention)
    CONSOLIDATION = 22  # dense lung (part of the lung label)
    EMPHYSEMA = 23  # low-attenuation lung (part of the lung label)
    TABLE = 24
    SPINAL_CANAL = 25
    FISSURE = 26
    LYMPH_NODE = 27
    GLAND = 28  # breast glandular tissue
    TUMOUR = 29  # central or chest-wall mass (label 3, part of the lung label)


#: tissues inside the lung label (R231 convention: dense pathology and small airways/vessels are lung)
LUNG_TISSUES = (Tissue.LUNG, Tissue.AIRWAY, Tissue.AIRWAY_WALL, Tissue.ARTERY, Tissue.VEIN, Tissue.NODULE,
                Tissue.EFFUSION, Tissue.CONSOLIDATION, Tissue.EMPHYSEMA, Tissue.FISSURE, Tissue.TUMOUR)

#: expected mean HU per tissue in a clean, non-contrast phantom (used by the realism tests)
EXPECTED_HU = {
    Tissue.OUTSIDE: (-1010, -990),
    Tissue.FAT: (-130, -60),
    Tissue.MUSCLE: (10, 70),
    Tissue.BONE: (300, 1500),
    Tissue.MARROW: (100, 400),
    Tissue.LUNG: (-900, -750),
    Tissue.TRACHEA: (-1010, -900),
    Tissue.LIVER: (35, 85),
    Tissue.HEART: (20, 70),
}


def names() -> dict[int, str]:
    return {int(t): t.name.lower() for t in Tissue}
