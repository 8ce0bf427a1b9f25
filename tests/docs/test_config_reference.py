"""docs/config_reference.md is the generator's output for the current defaults and lists every key."""
import importlib.util
from pathlib import Path

from fastreid.config import CfgNode, get_cfg

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("gen_config_reference", REPO / "tools/dev/gen_config_reference.py")
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)


def test_committed_reference_is_up_to_date():
    committed = (REPO / "docs" / "config_reference.md").read_text()
    assert committed == gen.render(), "docs/config_reference.md is stale: run python tools/dev/gen_config_reference.py"


def test_every_leaf_key_has_a_row():
    text = gen.render()
    missing = [key for key in get_cfg().full_keys() if f"| `{key}` |" not in text]
    assert not missing


SOURCE = '''"""Doc."""
import torch
_C = CN()
# Version.
_C.VERSION = 1

# ------------
# A banner
# ------------
_C.A = CN()
# Two keys share this.
_C.A.X = 0.5
_C.A.Y = [1, 2]

_C.A.Z = "s"  # trailing
# ---- #
# Group b: its keys say nothing.
_C.A.B = CN()
_C.A.B.K = (True,)
_C.A.DEV = "cuda" if torch.cuda.is_available() else "cpu"
'''


def test_comments_banners_paragraphs_and_computed_defaults():
    sources = gen.parse_defaults(SOURCE)
    assert sources["VERSION"].comment == "Version."
    assert sources["A"].comment == ""
    assert sources["A.X"].comment == sources["A.Y"].comment == "Two keys share this."
    assert sources["A.Z"].comment == "trailing"
    assert sources["A.B"].comment == "Group b: its keys say nothing."
    assert sources["A.B.K"].shared_with == "A.B"
    assert sources["A.DEV"].expression == '"cuda" if torch.cuda.is_available() else "cpu"'

    cfg = CfgNode({"VERSION": 1, "A": {"X": 0.5, "Y": [1, 2], "Z": "s", "B": {"K": (True,)}, "DEV": "cpu"}})
    page = gen.render(cfg, SOURCE)
    assert "| `A.X` | `0.5` | float | Two keys share this. |" in page
    assert "| `A.Y` | `[1, 2]` | list[int] | Two keys share this. |" in page
    assert "| `A.B.K` | `(True,)` | tuple[bool] | See the group description. |" in page
    assert "(computed) | str |" in page and "banner" not in page.lower()
    assert page.index("### A.B") > page.index("## A") > page.index("## Top-level keys")
