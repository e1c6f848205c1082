"""Retrain the shipped default models from scratch and install them in src/lungseg/weights/.

    .venv/bin/python scripts/train_default_models.py [--only lung_hu,nodule,lung_image] [--resume]

Each model is trained with `lungseg train configs/default_<name>.yaml` (same seed -> same weights
on CPU), then its best checkpoint is stripped to what inference needs and copied into the
package. Resumable: a killed run continues from runs/default_<name>/last.pt with --resume.
Measured on the 2-core development VM: see src/lungseg/weights/MODEL_CARD.md.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = {  # installed name -> training stages (config, run folder[, checkpoint]); the last stage is installed
    "lung_hu": [("configs/default_lung.yaml", "runs/default_lung_hu"),
                ("configs/default_lung_finetune.yaml", "runs/default_lung_hu_finetune"),
                ("configs/default_lung_tumours.yaml", "runs/default_lung_hu_tumours"),
                ("configs/default_lung_pathology.yaml", "runs/default_lung_hu_pathology")],
    "nodule": [("configs/default_nodule.yaml", "runs/default_nodule"),
               ("configs/default_nodule_tumours.yaml", "runs/default_nodule_tumours"),
               # epoch 6 of 8: the best CPM of benchmarks/real_nodules_in_lidc.py (validation nodules in a real scan,
               # first 12 copies); the crop Dice prefers epoch 1, which is still biased to the crop's centre
               ("configs/default_nodule_shift3.yaml", "runs/default_nodule_shift3", "epoch_6.pt"),
               # epoch 4 of 6: the best every-candidate CPM on the same 12 copies (0.514; epochs 2, 6: 0.403, 0.409)
               ("configs/default_nodule_real.yaml", "runs/default_nodule_real", "epoch_4.pt")],
    "lung_image": [("configs/default_lung_image.yaml", "runs/default_lung_image")],
    "classifier": [("configs/classifier_radiomics.yaml", "runs/classifiers/classifier_radiomics")],
}
KEEP = ("model_name", "model_kwargs", "spec", "preprocessing", "classes", "epoch", "metrics", "config", "state_dict")


EXPORT = {"lung_hu": True, "nodule": False}  # models run on OpenVINO -> resize inside the graph?


def install(best: Path, name: str) -> Path:
    """Copy the inference part of a checkpoint into the package (no optimiser state; weights
    stored in fp16 to keep the package small) and export the ONNX graph the CPU runtime uses.
    The malignancy classifier (a radiomics model) is its JSON, copied as it is."""
    if name == "classifier":
        import shutil

        return Path(shutil.copy(best.with_name("classifier.json"), ROOT / "src" / "lungseg" / "weights" / "classifier.json"))
    from lungseg.inference.export import export_onnx
    from lungseg.models.checkpoint import read_checkpoint, save_checkpoint

    ckpt = read_checkpoint(best)
    payload = {k: ckpt[k] for k in KEEP if k in ckpt}
    payload["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
    payload["display_name"] = name
    path = save_checkpoint(ROOT / "src" / "lungseg" / "weights" / f"{name}.pt", payload)
    if name in EXPORT:
        export_onnx(path, resize=EXPORT[name], upsample=False)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", default=",".join(MODELS))
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--install-only", action="store_true", help="copy existing runs/*/best.pt, no training")
    args = ap.parse_args()
    from lungseg.train import train

    for name in args.only.split(","):
        t = time.perf_counter()
        for config, out, *_ in MODELS[name]:
            if not args.install_only:
                train(ROOT / config, resume=args.resume, output_dir=ROOT / out)
        _, out, *checkpoint = MODELS[name][-1]
        path = install(ROOT / out / (checkpoint[0] if checkpoint else "best.pt"), name)
        print(f"{name}: trained in {(time.perf_counter() - t) / 60:.1f} min -> {path}", flush=True)


if __name__ == "__main__":
    main()
