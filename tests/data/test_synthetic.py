import json
import os
import threading

import numpy as np
from PIL import Image

from fastreid.data.datasets import SyntheticPerson, build_dataset, make_contact_sheet


def _kw(**over):
    kw = dict(num_ids=8, num_cameras=2, images_per_id=4, height=32, width=16, seed=0, verbose=False)
    kw.update(over)
    return kw


def test_layout_protocol_and_determinism(tmp_path):
    a = SyntheticPerson(str(tmp_path / "a"), **_kw())
    b = SyntheticPerson(str(tmp_path / "b"), **_kw())
    assert len(a.train) == 4 * 4 and {int(r[1].split("_")[1]) for r in a.train} == {1, 2, 3, 4}
    assert {r[1] for r in a.query} <= {r[1] for r in a.gallery} and not {r[1] for r in a.query} & {1, 2, 3, 4}
    for q in a.query:  # each query has a same-id gallery image from another camera
        assert any(g[1] == q[1] and g[2] != q[2] for g in a.gallery)
    names = sorted(os.path.basename(r[0]) for r in a.train)
    assert names == sorted(os.path.basename(r[0]) for r in b.train)
    assert names[0].endswith("_00.jpg") and names[0][4:6] == "_c"
    img_a, img_b = (np.asarray(Image.open(d.train[0][0])) for d in (a, b))
    assert img_a.shape == (32, 16, 3) and np.array_equal(img_a, img_b)


def test_regenerated_only_when_parameters_change(tmp_path):
    SyntheticPerson(str(tmp_path), **_kw())
    meta = tmp_path / "SyntheticPerson" / "meta.json"
    stamp = os.path.getmtime(meta)
    SyntheticPerson(str(tmp_path), **_kw())
    assert os.path.getmtime(meta) == stamp
    ds = SyntheticPerson(str(tmp_path), **_kw(num_ids=10))
    # 10 ids: the train / test split falls on a look-alike family boundary (families of 4)
    assert json.loads(meta.read_text())["num_ids"] == 10 and len({r[1] for r in ds.train}) == 4
    assert [p for p in os.listdir(tmp_path) if p != "SyntheticPerson"] == []  # no temp folders left


def test_concurrent_generation_is_safe(tmp_path):
    errors = []

    def run():
        try:
            SyntheticPerson(str(tmp_path), **_kw())
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors and len(SyntheticPerson(str(tmp_path), **_kw()).train) == 16


def test_from_config(tiny_synthetic_cfg):
    ds = build_dataset("SyntheticPerson", tiny_synthetic_cfg)
    assert len({r[2] for r in ds.train}) == 2 and Image.open(ds.train[0][0]).size == (16, 32)


def _hist(path, bins=16):
    a = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3).astype(int) // (256 // bins)
    h = np.concatenate([np.bincount(a[:, c], minlength=bins) for c in range(3)]).astype(float)
    return h / np.linalg.norm(h)


def _map(dist, qp, gp, qc, gc):
    aps = []
    for i in range(len(qp)):
        keep = ~((gp == qp[i]) & (gc == qc[i]))
        match = (gp[keep] == qp[i])[np.argsort(dist[i][keep], kind="stable")]
        if match.any():
            aps.append((np.cumsum(match)[match] / (np.flatnonzero(match) + 1)).mean())
    return float(np.mean(aps))


def test_colour_histogram_baseline_is_above_chance_but_far_from_solving_it(tmp_path):
    ds = SyntheticPerson(str(tmp_path), **_kw(num_ids=100, num_cameras=6, images_per_id=12, height=64, width=32))
    q = np.stack([_hist(r[0]) for r in ds.query])
    g = np.stack([_hist(r[0]) for r in ds.gallery])
    labels = [np.array([r[i] for r in rs]) for i in (1, 2) for rs in (ds.query, ds.gallery)]
    qp, gp, qc, gc = labels
    hist_map = _map(1 - q @ g.T, qp, gp, qc, gc)
    chance = np.mean([_map(np.random.default_rng(s).random((len(q), len(g))), qp, gp, qc, gc) for s in range(3)])
    assert 1.8 * chance < hist_map < 0.3, (hist_map, chance)


def test_contact_sheet(tmp_path):
    path = make_contact_sheet(str(tmp_path / "sheet.png"), num_ids=2, num_cameras=3, height=32, width=16)
    assert Image.open(path).size == (3 * 20 + 4, 2 * 36 + 4)


def test_parameter_validation(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="NUM_CAMERAS"):
        SyntheticPerson(str(tmp_path), **_kw(num_cameras=12))


def test_look_alike_family_members_differ_in_few_attributes():
    import dataclasses

    import numpy as np

    from fastreid.data.datasets.synthetic_render import Identity, look_alike

    base = Identity.sample(np.random.default_rng(0))
    for seed in range(20):
        member = look_alike(base, np.random.default_rng(seed), num_changes=2)
        changed = [f.name for f in dataclasses.fields(Identity)
                   if not np.array_equal(getattr(base, f.name), getattr(member, f.name))]
        assert np.array_equal(member.top, base.top) and np.array_equal(member.bottom, base.bottom)
        assert set(changed) - {"build"} <= {"shoes", "bag", "bag_colour", "hat", "hat_colour", "hair",
                                            "long_sleeves", "top_pattern", "bottom_type", "long_hair"}
        assert len(set(changed) - {"build", "bag_colour", "hat_colour"}) <= 2
