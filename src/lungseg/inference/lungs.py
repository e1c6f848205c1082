"""Stage 1, lungs: the HU lung network (right/left), or the image-mode one for pictures and
normalised data (loaded on first use: most input is HU and never needs it)."""
from __future__ import annotations

from ..errors import NotHUError
from ..io import CTImage
from .output import SegmenterOutput


class LungStage:
    def __init__(self, hu_checkpoint, image_checkpoint=None, crf: bool = False, **network_options):
        from .network import ModelSegmenter

        self.hu = ModelSegmenter.from_checkpoint(hu_checkpoint, crf=crf, **network_options)
        self._image_checkpoint = image_checkpoint
        self._options = network_options
        self._image = None

    @property
    def image(self):
        if self._image is None and self._image_checkpoint is not None and self._image_checkpoint.exists():
            from .network import ModelSegmenter

            self._image = ModelSegmenter.from_checkpoint(self._image_checkpoint, **self._options)
        return self._image

    def __call__(self, ct: CTImage, postprocess: bool = True) -> SegmenterOutput:
        if ct.is_hu:
            out = self.hu(ct, postprocess=postprocess, airways_out=False)  # the pipeline does it last
            out.model = "default (lungs)"
            return out
        if self.image is None:
            raise NotHUError("input is not in Hounsfield units and no image-mode model is installed; "
                             "use --model classical, or --intensity hu if the values are HU")
        out = self.image(ct, postprocess=postprocess)
        out.model = "default (image-mode lungs)"
        return out
