"""docs/extending.md stays true: its links resolve and the fastreid imports in its snippets work."""
import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "extending.md"
TEXT = DOC.read_text()
SNIPPETS = re.findall(r"```python\n(.*?)```", TEXT, flags=re.S)
IMPORTS = sorted({m for s in SNIPPETS for m in re.findall(r"^from (fastreid[\w.]*) import ([\w, ]+)$", s, re.M)})


def test_relative_links_resolve():
    targets = re.findall(r"\]\((?!https?:)([^)#]+)\)", TEXT)
    assert targets
    assert [t for t in targets if not (DOC.parent / t).exists()] == []


def test_project_tree_lists_existing_files():
    tree = re.search(r"```\n(projects/ToyProject/.*?)```", TEXT, flags=re.S).group(1)
    names = re.findall(r"[├└]── ([\w./]+)", tree)
    project = REPO / "projects" / "ToyProject"
    found = {p.relative_to(project).as_posix() for p in project.rglob("*")} | {p.name for p in project.rglob("*")}
    assert names and [n for n in names if n.rstrip("/") not in found] == []


@pytest.mark.parametrize("module,names", IMPORTS, ids=[m for m, _ in IMPORTS])
def test_snippet_imports_exist(module, names):
    imported = importlib.import_module(module)
    for name in (n.strip().split(" as ")[0] for n in names.split(",")):
        assert hasattr(imported, name), f"{module}.{name}"


def _section_code(title: str) -> str:
    section = TEXT.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    return "\n".join(re.findall(r"```python\n(.*?)```", section, flags=re.S))


def test_transform_example_joins_the_pipeline_it_is_listed_in():
    from fastreid.config import get_cfg
    from fastreid.data.transforms import build_transforms

    exec(_section_code("A transform"), {})
    cfg = get_cfg()
    steps = cfg.INPUT.TRAIN_TRANSFORMS
    steps.insert(steps.index("to_tensor"), "gaussian_blur")
    names = [type(t).__name__ for t in build_transforms(cfg, is_train=True).transforms]
    assert names.index("RandomApply") < names.index("ToTensor255")
    assert "GaussianBlur" in repr(build_transforms(cfg, is_train=True))
    assert "GaussianBlur" not in repr(build_transforms(cfg, is_train=False))


def test_ranking_strategy_example_gives_the_dense_numbers():
    import torch

    from fastreid.config import get_cfg
    from fastreid.evaluation import ReidEvaluator

    namespace = {}
    exec(_section_code("A ranking strategy"), namespace)
    cfg = get_cfg()
    cfg.TEST.RANKING = "Float64Ranking"
    torch.manual_seed(0)
    feats, pids, camids = torch.randn(60, 8), torch.arange(60) % 12, torch.arange(60) % 5
    results = []
    for evaluator in (ReidEvaluator(cfg, 20), ReidEvaluator(20)):
        evaluator.process({"targets": pids, "camids": camids}, feats)
        results.append(evaluator.evaluate())
    assert type(ReidEvaluator(cfg, 20).ranking).__name__ == "Float64Ranking"
    assert results[0] == pytest.approx(results[1])
