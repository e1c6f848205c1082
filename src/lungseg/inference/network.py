"""ModelSegmenter: a trained checkpoint -> probabilities -> labels on the CT's grid.

2D models run slice by slice in batches (each slice resized to the training input size and
back, or padded at its native size); 3D models run MONAI's sliding-window inference. The network
itself runs on a runtime (lungseg.inference.runtimes: PyTorch or OpenVINO, same masks); this
class does what is common to all of them: input normalisation, 2.5D context, batching, labels.
Precision "auto" is fp32: bf16 (precision="bf16") is ~2x faster on CPUs that have it but moved
Dice by up to 0.002 on coarse scans (benchmarks/runtimes.py). Test-time augmentation: see tta.py.
Full probability maps are kept only when asked for (they are large).
"""
from __future__ import annotations

import numpy as np

from ..airways import remove_central_airways
from ..io import CTImage
from ..postprocess import postprocess_labels
from .output import SegmenterOutput
from .runtimes.base import Runtime
from .tta import Mirroring
from .upsample import winners_at_slice_size

CLASS_TO_LABEL = {"background": 0, "right_lung": 1, "left_lung": 2, "nodule": 3, "lung": 1}


class ModelSegmenter:
    def __init__(self, model, meta: dict, device: str = "cpu", precision: str = "auto", tta: bool = False,
                 batch_size: int = 16, keep_probabilities: bool = False, crf: bool = False,
                 low_confidence: bool = True, every_slice: bool = False):
        """model: a Runtime, or a torch module (run on the PyTorch runtime).
        every_slice: run the network on every slice even of a thin-slice scan; by default, on scans
        of <= 1.5 mm slices a 2D model without neighbour-slice context runs on every other slice
        (thin_slices.py)."""
        self.meta = meta
        pre = meta.get("preprocessing", {})
        if not isinstance(model, Runtime):
            from .runtimes import divisibility
            from .runtimes.torch_runtime import TorchRuntime

            model = TorchRuntime(model, pre.get("input_size"), divisibility(meta), device=device, precision=precision)
        self.runtime = model
        self.intensity = pre.get("intensity", {"mode": "window", "windows": ["lung"]})
        self.dims = int(pre.get("dims", 2))
        self.patch_size = pre.get("patch_size")
        self.context = int(pre.get("context_slices", 0))  # 2.5D: neighbour slices as channels
        self.classes = list(meta.get("classes", ["background", "right_lung", "left_lung", "nodule"]))
        self.name = meta.get("display_name") or _stem(meta.get("path", "model"))
        self.requires_hu = self.intensity.get("mode") in ("window", "clip")
        self.tta = tta
        self.mirroring = Mirroring.for_classes(self.classes, tta)
        self.batch_size = batch_size
        self.keep_probabilities = keep_probabilities
        self.crf = crf  # dense-CRF refinement of the probabilities (lungseg.inference.crf)
        self.low_confidence = low_confidence  # the map previews show; a scan-sized array, so optional
        self.every_slice = every_slice

    @classmethod
    def from_checkpoint(cls, path, device: str = "cpu", runtime: str = "auto", resize: bool = True,
                        precision: str = "auto", **kwargs) -> "ModelSegmenter":
        """runtime: 'torch', 'openvino' or 'auto' (see lungseg.inference.runtimes.load)."""
        from .runtimes import load

        net, meta = load(path, device=device, runtime=runtime, resize=resize, precision=precision)
        return cls(net, meta, **kwargs)

    @property
    def input_size(self):
        """The fixed size the network sees, or None (native-size slices, padded)."""
        return self.runtime.input_size

    def tta_mirrors(self) -> tuple[tuple[int, ...], ...]:
        return self.mirroring.mirrors

    # ---- public ------------------------------------------------------------------------------
    def iter_probabilities(self, ct: CTImage):
        """Yield (first slice, probabilities (b, K, y, x) float32) batch by batch, so a big scan
        never holds its whole network input or probability volume in memory (2D models)."""
        from ..data.preprocess import normalize_intensity

        if self.dims != 2:
            x = normalize_intensity(ct.array, self.intensity, is_hu=ct.is_hu)
            roi = self.patch_size or self.input_size or (96, 96, 96)
            yield 0, self.runtime.volume_probabilities(x, roi, self.mirroring).transpose(1, 0, 2, 3)
            return
        for start, x in self.iter_inputs(ct):
            yield start, self.predict_batch(x)

    def iter_inputs(self, ct: CTImage, slices: np.ndarray | None = None):
        """(first slice, normalised network input (b, C, y, x)) per batch of a 2D model.
        slices: only these slices (no neighbour-slice context), "first" a position in them."""
        from ..data.preprocess import context_indices, intensity_stats, normalize_intensity, stack_context

        stats = intensity_stats(ct.array, self.intensity)  # whole-scan statistics, as in training
        n = ct.shape[0] if slices is None else len(slices)
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            if slices is not None:
                yield start, normalize_intensity(ct.array[slices[start:stop]], self.intensity, is_hu=ct.is_hu,
                                                 stats=stats, batch_first=True)
            elif self.context:
                chunk = ct.array[context_indices(start, stop, ct.shape[0], self.context)]
                x = normalize_intensity(chunk, self.intensity, is_hu=ct.is_hu, stats=stats)
                yield start, stack_context(x, self.context)
            else:
                yield start, normalize_intensity(ct.array[start:stop], self.intensity, is_hu=ct.is_hu, stats=stats,
                                                 batch_first=True)

    def predict_batch(self, x: np.ndarray) -> np.ndarray:
        """(b, C, h, w) network input -> (b, K, h, w) probabilities at the input's size."""
        return self.runtime.probabilities(x, self.mirroring)

    def predict_probabilities(self, ct: CTImage) -> np.ndarray:
        """(K, z, y, x) float32 softmax probabilities in checkpoint class order."""
        out = np.empty((len(self.classes),) + ct.shape, dtype=np.float32)
        for start, p in self.iter_probabilities(ct):
            out[:, start:start + p.shape[0]] = p.transpose(1, 0, 2, 3)
        return out

    def __call__(self, ct: CTImage, postprocess: bool = True, airways_out: bool = True) -> SegmenterOutput:
        """airways_out: after post-processing, take the main bronchi out of the lungs (lungseg.airways;
        the default pipeline does it itself, after its nodule stage)."""
        lut = np.array([CLASS_TO_LABEL.get(c, 0) for c in self.classes], dtype=np.uint8)  # class -> label
        labels = np.empty(ct.shape, dtype=np.uint8)
        low = np.empty(ct.shape, dtype=bool) if self.low_confidence else None
        keep = self.keep_probabilities or self.crf
        probs = np.empty((len(self.classes),) + ct.shape, np.float16) if keep else None
        for start, w, lo, p in self._iter_outputs(ct, keep):
            sl = slice(start, start + w.shape[0])
            labels[sl] = lut[w]  # batch by batch: no scan-sized array of class indices
            if low is not None:
                low[sl] = lo
            if probs is not None:
                probs[:, sl] = p.transpose(1, 0, 2, 3)
        if self.crf:
            from .crf import dense_crf

            labels = lut[dense_crf(ct.array, probs, spacing_xy=ct.spacing[:2])]
        if "lung" in self.classes and "left_lung" not in self.classes:  # a both-lungs model
            from ..classical import split_left_right

            labels = np.where(labels == 3, 3, split_left_right(labels == 1, ct)).astype(np.uint8)
        if postprocess:
            labels = postprocess_labels(labels, ct.spacing_zyx, hu=ct.array if ct.is_hu else None)
            if ct.is_hu and airways_out:
                remove_central_airways(labels, ct.array, ct.spacing_zyx)
        return SegmenterOutput(labels, probs if self.keep_probabilities else None, low)

    # ---- internals ---------------------------------------------------------------------------
    def _iter_outputs(self, ct: CTImage, keep: bool):
        """(first slice, winning class (b, y, x), low-confidence map, probabilities or None).
        A 2D model's winners come from the runtime's own-size output (iter_low_res: OpenVINO's
        256x256 lung graph is upsampled only along class borders), on a thin-slice scan from
        every other slice (thin_slices.py)."""
        if keep or self.dims != 2:
            for start, p in self.iter_probabilities(ct):
                yield (start,) + winners_at_slice_size(p, p.shape[-2:], self.low_confidence) + (p if keep else None,)
            return
        run_on = self._network_slices(ct)
        stream = self.runtime.iter_low_res(self.iter_inputs(ct, run_on), self.mirroring)
        if run_on is not None:
            from .thin_slices import fill_skipped_slices

            stream = fill_skipped_slices(stream, run_on)
        for start, size, p in stream:
            yield (start,) + winners_at_slice_size(p, size, self.low_confidence) + (None,)

    def _network_slices(self, ct: CTImage) -> np.ndarray | None:
        """The slices a thin-slice scan's 2D network runs on (thin_slices.py), or None for all of
        them: always for 2.5D models and test-time mirroring."""
        if self.every_slice or self.context or self.mirroring.mirrors:
            return None
        from .thin_slices import network_slices

        return network_slices(ct.shape[0], float(ct.spacing[2]))


def _stem(path: str) -> str:
    from pathlib import Path

    return Path(path).stem
