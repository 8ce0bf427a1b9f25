import numpy as np
import torch
from torch import nn

from fastreid.config import get_cfg
from fastreid.evaluation import (AQEOptions, DenseRanking, ReidEvaluator, RerankOptions, compute_distance_matrix,
                                 evaluate_rank, inference_on_dataset, print_csv_format, re_ranking)


def _data(seed=0, nq=12, ng=40, dim=8):
    g = torch.Generator().manual_seed(seed)
    pids = torch.cat([torch.arange(nq) % 6, torch.randint(0, 6, (ng,), generator=g)])
    camids = torch.cat([torch.zeros(nq, dtype=torch.long), torch.randint(0, 3, (ng,), generator=g)])
    centres = torch.randn(6, dim, generator=g)
    feats = centres[pids] + 0.8 * torch.randn(nq + ng, dim, generator=g)
    return feats, pids, camids


def _feed(evaluator, feats, pids, camids, batch=7):
    evaluator.reset()
    for s in range(0, len(feats), batch):
        evaluator.process({"targets": pids[s:s + batch], "camids": camids[s:s + batch]}, feats[s:s + batch])


def test_results_match_evaluate_rank_and_from_config():
    feats, pids, camids = _data()
    cfg = get_cfg()
    cfg.TEST.METRIC = "euclidean"
    ev = ReidEvaluator(cfg, num_query=12)
    assert ev.metric == "euclidean"
    _feed(ev, feats, pids, camids)
    res = ev.evaluate()
    assert list(res) == ["Rank-1", "Rank-5", "Rank-10", "mAP", "mINP", "metric"]
    dist = compute_distance_matrix(feats[:12], feats[12:], "euclidean")
    cmc, ap, inp = evaluate_rank(dist, pids[:12], pids[12:], camids[:12], camids[12:])
    assert np.isclose(res["Rank-1"], cmc[0] * 100) and np.isclose(res["Rank-10"], cmc[9] * 100)
    assert np.isclose(res["mAP"], ap.mean() * 100) and np.isclose(res["mINP"], inp.mean() * 100)
    assert np.isclose(res["metric"], (res["mAP"] + res["Rank-1"]) / 2)


def test_rerank_aqe_and_roc_options():
    feats, pids, camids = _data(1)
    ranking = DenseRanking(rerank=RerankOptions(enabled=True, k1=5, k2=2), roc_enabled=True)
    ev = ReidEvaluator(num_query=12, metric="cosine", ranking=ranking, chunk_size=5)
    _feed(ev, feats, pids, camids)
    res = ev.evaluate()
    dist = re_ranking(feats[:12], feats[12:], "cosine", 5, 2, 0.3)
    _, ap, _ = evaluate_rank(dist, pids[:12], pids[12:], camids[:12], camids[12:])
    assert np.isclose(res["mAP"], ap.mean() * 100)
    assert {"TPR@FPR=1e-04", "TPR@FPR=1e-03", "TPR@FPR=1e-02"} <= set(res)
    ev = ReidEvaluator(num_query=12, aqe=AQEOptions(enabled=True, qe_k=3))
    _feed(ev, feats, pids, camids)
    assert 0 <= ev.evaluate()["mAP"] <= 100


def test_indices_restore_order_and_drop_padding():
    feats, pids, camids = _data(2)
    ref = ReidEvaluator(num_query=12)
    _feed(ref, feats, pids, camids)
    want = ref.evaluate()
    ev = ReidEvaluator(num_query=12)
    perm = torch.cat([torch.randperm(len(feats)), torch.tensor([0, 5])])  # shuffled + padded duplicates
    for s in range(0, len(perm), 9):
        idx = perm[s:s + 9]
        ev.process({"targets": pids[idx], "camids": camids[idx], "indices": idx}, feats[idx])
    assert ev.evaluate() == want


class _ToyModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(3 * 4 * 6, 5)
        self.seen_training = None

    def forward(self, inputs):
        self.seen_training = self.training
        assert not torch.is_grad_enabled()
        x = inputs["images"]
        return self.proj(torch.cat([x, x.flip(3)], 3)[..., :6].flatten(1) / 255)


def test_inference_on_dataset_flip_and_mode_restored(caplog):
    torch.manual_seed(0)
    images = torch.rand(10, 3, 4, 3) * 255
    pids = torch.tensor([0, 1, 0, 1, 2, 2, 0, 1, 0, 2])
    camids = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    loader = [{"images": images[s:s + 4], "targets": pids[s:s + 4], "camids": camids[s:s + 4]}
              for s in range(0, 10, 4)]
    model = _ToyModel().train()

    class Capture(ReidEvaluator):
        def process(self, inputs, outputs):
            self.captured = getattr(self, "captured", []) + [outputs]
            super().process(inputs, outputs)

    ev = Capture(num_query=4)
    res = inference_on_dataset(model, loader, ev, flip_test=True)
    assert model.training and model.seen_training is False
    with torch.no_grad():
        want = (model.proj(torch.cat([images, images.flip(3)], 3)[..., :6].flatten(1) / 255)
                + model.proj(torch.cat([images.flip(3), images], 3)[..., :6].flatten(1) / 255)) / 2
    torch.testing.assert_close(torch.cat(ev.captured), want)
    assert "Rank-1" in res
    table = print_csv_format(res)
    assert "Rank-1" in table and "mAP" in table
