"""The inference package: no import circle, stages in order, and `lungseg segment`'s masks kept
(tests/data/reference_masks, written by scripts/record_reference_masks.py: first with the code
before the package existed, which the package reproduced voxel for voxel; re-recorded when the
lung model was retrained on purpose)."""
import ast
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, dice, shared_path

PACKAGE = REPO / "src" / "lungseg"
REFERENCES = REPO / "tests" / "data" / "reference_masks"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every lungseg module `path` imports, at the top or inside functions (lazy imports too)."""
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("lungseg")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("lungseg"):
                found.add(target)
                found |= {f"{target}.{a.name}" for a in node.names}  # `from . import upsample`
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in root.rglob("*.py")}
    return {m: {t for t in _imports(p) if t in modules and t != m} for m, p in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == "open":
                return stack[stack.index(t):] + [t]
            if t not in state and (cycle := visit(t)):
                return cycle
        state[m] = "done"
        stack.pop()
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def test_cycle_finder_finds_a_crafted_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_inference_package_has_no_import_circle():
    graph = import_graph(PACKAGE / "inference")
    assert "lungseg.inference.network" in graph and "lungseg.inference.runtimes.base" in graph
    assert find_cycle(graph) is None


def test_stages_import_only_downwards():
    """Lower stages never import higher ones; runtimes know nothing of the stages."""
    graph = import_graph(PACKAGE / "inference")
    order = ["output", "tta", "patches", "runtimes", "network", "lungs", "scoring", "candidates", "postprocessing",
             "report", "classify", "pipeline", "resolve"]
    rank = {f"lungseg.inference.{name}": i for i, name in enumerate(order)}

    def rank_of(module):
        return next((r for m, r in rank.items() if module == m or module.startswith(m + ".")), None)

    for module, targets in graph.items():
        for target in targets:
            if rank_of(module) is not None and rank_of(target) is not None:
                assert rank_of(target) <= rank_of(module), f"{module} imports the higher stage {target}"


def test_old_loose_modules_are_gone():
    for name in ("infer", "infer_openvino", "segmenters", "default_model", "nodules", "upsample", "crf", "export"):
        assert not (PACKAGE / f"{name}.py").exists()


CASES = {"sample": None, "cip_rot": "lungs/cip_copdgene/ct-64-transformed.nrrd",
         "lidc0003": "whole_scans/LIDC-IDRI-0003/LIDC-IDRI-0003.zip"}


@pytest.mark.parametrize("name", list(CASES))
def test_segment_output_unchanged_on_real_cases(name):
    pytest.importorskip("openvino")
    import lungseg
    from lungseg.samples import SAMPLE_CT

    scan = SAMPLE_CT if CASES[name] is None else shared_path(CASES[name])
    labels = lungseg.segment(scan).labels
    reference = np.load(REFERENCES / f"{name}.npz")["labels"]
    assert labels.shape == reference.shape
    # same voxels up to CPU-kernel round-off: lungs to 1e-4 of the voxels, nodules Dice >= 0.99
    assert (labels != reference).mean() < 1e-4
    for value in (1, 2, 3):
        if (reference == value).any():
            assert dice(labels == value, reference == value) >= 0.99
