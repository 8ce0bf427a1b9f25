"""combineall keeps GRID's pid-0 distractors and PRID's gallery-only ids out of training (issue 13)."""
from fastreid.config import get_cfg
from fastreid.data import build_train_set
from fastreid.data.datasets import build_dataset

from .conftest import write_images


def _grid(root, num_ids=6):
    base = root / "grid" / "underground_reid"
    write_images(base / "probe", [f"{p:04d}_1_25004_107_32_130_415.jpeg" for p in range(1, num_ids + 1)])
    write_images(base / "gallery", [f"{p:04d}_2_25004_107_32_130_415.jpeg" for p in range(1, num_ids + 1)]
                 + [f"0000_{c}_25004_107_32_130_41{c}.jpeg" for c in (3, 4, 5)])


def _prid(root, num_paired=6):
    base = root / "prid2011" / "prid_2011" / "single_shot"
    write_images(base / "cam_a", [f"person_{p:04d}.png" for p in range(1, num_paired + 1)] + ["person_0201.png"])
    write_images(base / "cam_b", [f"person_{p:04d}.png" for p in range(1, num_paired + 1)]
                 + ["person_0201.png", "person_0300.png", "person_0301.png"])


def _raw_ids(train, name):
    return sorted(int(pid.rsplit("_", 1)[1]) for pid in {r[1] for r in train} if pid.startswith(f"{name}_test_"))


def test_grid_combineall_leaves_distractors_out(tmp_path):
    _grid(tmp_path)
    plain = build_dataset("GRID", root=str(tmp_path), verbose=False)
    assert 0 in {r[1] for r in plain.gallery}
    combined = build_dataset("GRID", root=str(tmp_path), combineall=True, verbose=False)
    test_ids = sorted({r[1] for r in plain.query + plain.gallery} - {0})
    assert _raw_ids(combined.train, "GRID") == test_ids
    assert len(combined.train) == len(plain.train) + len([r for r in plain.query + plain.gallery if r[1] != 0])
    assert combined.gallery == plain.gallery  # the test protocol is unchanged


def test_prid_combineall_leaves_gallery_only_ids_out(tmp_path, monkeypatch):
    _prid(tmp_path)
    from fastreid.data.datasets import PRID

    monkeypatch.setattr(PRID, "num_paired", 6)
    plain = build_dataset("PRID", root=str(tmp_path), verbose=False)
    gallery_only = {r[1] for r in plain.gallery} - {r[1] for r in plain.query}
    assert {300, 301} <= gallery_only
    combined = build_dataset("PRID", root=str(tmp_path), combineall=True, verbose=False)
    assert not set(_raw_ids(combined.train, "PRID")) & {201, 300, 301}
    assert set(_raw_ids(combined.train, "PRID")) == {r[1] for r in plain.query}


def test_config_path_combineall(tmp_path, monkeypatch):
    from fastreid.data.datasets import PRID

    monkeypatch.setattr(PRID, "num_paired", 6)
    _grid(tmp_path)
    _prid(tmp_path)
    cfg = get_cfg()
    cfg.merge_from_list(["DATASETS.ROOT", str(tmp_path), "DATASETS.NAMES", ("GRID", "PRID"),
                         "DATASETS.COMBINEALL", True])
    train_set = build_train_set(cfg)
    # 6 ids per set, all trained (3 train + 3 test); no distractor or gallery-only identity among them.
    assert train_set.num_classes == 12
    assert not any(p.endswith(("_test_0", "_test_201", "_test_300", "_test_301")) for p in train_set.pid_dict)
