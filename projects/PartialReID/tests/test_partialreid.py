"""PartialReID: the DSR distance against its definition, the partial dataset, and a short training run."""
import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image

from fastreid.config import get_cfg
from fastreid.data.datasets import DATASET_REGISTRY, build_dataset
from fastreid.engine import default_argument_parser
from fastreid.modeling import META_ARCH_REGISTRY

from .conftest import PROJECT

CONFIG = str(PROJECT / "tests" / "tiny_synthetic.yml")


def _tiny_opts(tmp_path):
    """Where the test run keeps its generated data and its output."""
    return ["DATASETS.ROOT", str(tmp_path / "data"), "OUTPUT_DIR", str(tmp_path / "out")]


def _project_cfg(tmp_path):
    from partialreid import add_partialreid_config

    cfg = get_cfg()
    add_partialreid_config(cfg)
    cfg.merge_from_file(CONFIG)
    cfg.merge_from_list(_tiny_opts(tmp_path))
    return cfg


def test_importing_the_package_registers_its_components():
    import partialreid

    assert META_ARCH_REGISTRY.get("DSRBaseline") is partialreid.DSRBaseline
    assert DATASET_REGISTRY.get("PartialSyntheticPerson") is partialreid.PartialSyntheticPerson


def _ridge_error(x, dictionary, beta):
    """‖x − Dᵀw‖² with w the least-squares solution of [Dᵀ; √β I] w = [x; 0] (numpy lstsq)."""
    m = dictionary.shape[0]
    system = np.vstack([dictionary.T, np.sqrt(beta) * np.eye(m)])
    w = np.linalg.lstsq(system, np.concatenate([x, np.zeros(m)]), rcond=None)[0]
    return float(np.sum((x - dictionary.T @ w) ** 2))


@pytest.mark.parametrize("chunk_size", [None, 2])
def test_dsr_distance_is_the_mean_ridge_reconstruction_error(chunk_size):
    from partialreid import dsr_distance

    gen = torch.Generator().manual_seed(0)
    query = torch.randn(3, 4, 6, generator=gen, dtype=torch.float64)    # Q×N×C
    gallery = torch.randn(5, 7, 6, generator=gen, dtype=torch.float64)  # G×M×C, M > C: the ridge term matters
    beta = 0.3
    dist = dsr_distance(query, gallery, beta, chunk_size=chunk_size)
    expected = np.array([[np.mean([_ridge_error(x, g, beta) for x in q]) for g in gallery.numpy()]
                         for q in query.numpy()])
    np.testing.assert_allclose(dist.numpy(), expected, rtol=1e-9, atol=1e-12)


def test_dsr_distance_is_small_when_the_gallery_holds_the_query_parts():
    from partialreid import dsr_distance, spatial_dictionary

    gen = torch.Generator().manual_seed(1)
    gallery_maps = torch.randn(4, 32, 6, 3, generator=gen)
    partial = gallery_maps[2:3, :, :3]  # the top half of gallery item 2
    dist = dsr_distance(spatial_dictionary(partial), spatial_dictionary(gallery_maps, (1, 2)), 0.01)
    assert dist.argmin().item() == 2 and dist[0, 2] < 0.01 < dist[0, [0, 1, 3]].min()


def test_spatial_dictionary_pools_at_each_scale_and_normalises():
    from partialreid import spatial_dictionary

    maps = torch.rand(2, 5, 4, 3)
    atoms = spatial_dictionary(maps, (1, 2))
    assert atoms.shape == (2, 4 * 3 + 3 * 2, 5)
    torch.testing.assert_close(atoms.norm(dim=2), torch.ones(2, 18))
    window = maps[1, :, 0:2, 1:3].mean(dim=(1, 2))
    torch.testing.assert_close(atoms[1, 12 + 1], window / window.norm())
    with pytest.raises(ValueError, match="GALLERY_SCALES"):
        spatial_dictionary(maps, (4,))


def test_rank_metrics_on_a_hand_built_distance_matrix():
    from partialreid import rank_metrics

    # One query of id 1 (camera 0); the gallery by distance: id 2, id 1, id 1, all from camera 1.
    dist = torch.tensor([[0.2, 0.1, 0.3]])
    results = rank_metrics(dist, np.array([1]), np.array([1, 2, 1]), np.array([0]), np.array([1, 1, 1]),
                           ranks=(1, 2), prefix="X-")
    assert results["X-Rank-1"] == 0 and results["X-Rank-2"] == 100
    assert results["X-mAP"] == pytest.approx(100 * (1 / 2 + 2 / 3) / 2)
    assert results["X-mINP"] == pytest.approx(100 * 2 / 3)  # the last true match is at rank 3


def test_dsr_evaluator_ranks_partial_maps_to_their_whole_maps():
    from partialreid import DSREvaluator

    gen = torch.Generator().manual_seed(2)
    gallery = torch.rand(4, 16, 6, 2, generator=gen)
    queries = gallery[:, :, :3].repeat_interleave(2, dim=2)  # each top half, stretched back to 6 rows
    evaluator = DSREvaluator(4, regularizer=0.01, gallery_scales=(1,), ranks=(1,))
    evaluator.reset()
    evaluator.process({"targets": torch.arange(4), "camids": torch.zeros(4)}, queries)
    evaluator.process({"targets": torch.arange(4), "camids": torch.ones(4)}, gallery)
    results = evaluator.evaluate()
    assert results["Rank-1"] == 100 and results["mAP"] == 100
    assert set(results) == {"Rank-1", "mAP", "mINP", "metric", "Global-Rank-1", "Global-mAP", "Global-mINP",
                            "Global-metric"}


def test_dsr_evaluator_refuses_flip_test(tmp_path):
    from partialreid import DSREvaluator

    cfg = _project_cfg(tmp_path)
    cfg.TEST.FLIP_ENABLED = True
    with pytest.raises(ValueError, match="TEST.FLIP_ENABLED"):
        DSREvaluator(cfg, 4)


def test_partial_dataset_cuts_the_queries_and_keeps_the_gallery(tmp_path):
    cfg = _project_cfg(tmp_path)
    holistic = build_dataset("SyntheticPerson", cfg, verbose=False)
    partial = build_dataset("PartialSyntheticPerson", cfg, verbose=False)
    assert partial.gallery == holistic.gallery
    assert [r[1:] for r in partial.query] == [r[1:] for r in holistic.query]
    for (cut, *_), (whole, *_) in zip(partial.query, holistic.query):
        with Image.open(cut) as a, Image.open(whole) as b:
            assert a.width == b.width and 0.5 * b.height - 1 <= a.height <= 0.75 * b.height + 1
    again = build_dataset("PartialSyntheticPerson", cfg, verbose=False)  # reuses the crops
    assert again.query == partial.query


def test_train_net_trains_and_evaluates_partial_queries_with_dsr(tmp_path):
    spec = importlib.util.spec_from_file_location("partialreid_train_net", PROJECT / "train_net.py")
    train_net = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_net)
    args = default_argument_parser().parse_args(["--config-file", CONFIG, *_tiny_opts(tmp_path)])
    results = train_net.main(args)["PartialSyntheticPerson"]
    assert {"Rank-1", "mAP", "mINP", "Global-Rank-1", "Global-mAP"} <= set(results)
    assert 0 < results["mAP"] <= 100 and 0 < results["Global-mAP"] <= 100
    assert (tmp_path / "out" / "model_final.pth").exists()
