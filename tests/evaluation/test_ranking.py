import logging

import numpy as np
import pytest
import torch

from fastreid.config import get_cfg
from fastreid.evaluation import (RANKING_REGISTRY, AQEOptions, DenseRanking, ExactRanking, FaissOptions, FaissRanking,
                                 RankingContext, RankingStrategy, RankLabels, RankResult, ReidEvaluator, RerankOptions,
                                 average_query_expansion, build_ranking, compute_distance_matrix, evaluate_rank,
                                 is_faiss_available)
from test_faiss_rank import _clustered


@RANKING_REGISTRY.register()
class RecordingRanking(RankingStrategy):
    """A test strategy: remembers its inputs and returns fixed statistics."""

    def __init__(self, tag: str = "") -> None:
        self.tag = tag
        self.calls = []

    @classmethod
    def from_config(cls, cfg):
        return {"tag": cfg.TEST.METRIC}

    def rank(self, query, gallery, labels, context):
        self.calls.append((query.clone(), gallery.clone(), labels, context))
        return RankResult(np.array([0.25, 0.5, 1.0]), np.array([0.5, 0.7]), np.array([0.1, 0.3]))


@RANKING_REGISTRY.register()
def NotARanking(cfg=None):  # noqa: N802 - a registered builder function, not a strategy class
    return object()


def _strategies():
    out = [DenseRanking(), ExactRanking()]
    if is_faiss_available():
        out.append(FaissRanking(options=FaissOptions(topk=15)))
    return out


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("ignore_camid", [False, True])
def test_strategies_agree_on_a_random_problem(metric, ignore_camid):
    q, g, labels = _clustered(11, nq=25, ng=180, noise=0.6)
    labels = RankLabels(**labels)
    context = RankingContext(metric=metric, max_rank=20, ignore_camid=ignore_camid, chunk_size=8)
    want = evaluate_rank(compute_distance_matrix(q.double(), g.double(), metric), *labels, max_rank=20,
                         ignore_camid=ignore_camid)
    for strategy in _strategies():
        # float64 features: the dense distances are the float64 reference the other two reproduce.
        qs, gs = (q.double(), g.double()) if isinstance(strategy, DenseRanking) else (q.clone(), g.clone())
        got = strategy.rank(qs, gs, labels, context)
        assert got.roc is None
        for a, b in zip((got.cmc, got.all_ap, got.all_inp), want):
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, atol=1e-12, rtol=0, err_msg=type(strategy).__name__)


def test_dense_ranking_alone_reports_roc_and_reranks():
    q, g, labels = _clustered(12, nq=10, ng=60)
    labels = RankLabels(**labels)
    plain = DenseRanking(roc_enabled=True).rank(q.clone(), g.clone(), labels, RankingContext())
    assert set(plain.roc) == {"TPR@FPR=1e-04", "TPR@FPR=1e-03", "TPR@FPR=1e-02"}
    reranked = DenseRanking(rerank=RerankOptions(enabled=True, k1=5, k2=2)).rank(q.clone(), g.clone(), labels,
                                                                                 RankingContext())
    assert not np.array_equal(reranked.all_ap, plain.all_ap)


@pytest.mark.parametrize("faiss,exact,rerank,roc,expected", [
    (False, False, False, False, DenseRanking),
    (False, True, False, False, ExactRanking),
    (True, False, False, False, FaissRanking),
    (True, True, False, False, FaissRanking),
    (True, False, True, False, DenseRanking),
    (False, True, False, True, DenseRanking),
])
def test_build_ranking_automatic_choice(faiss, exact, rerank, roc, expected, caplog):
    cfg = get_cfg()
    cfg.TEST.FAISS.ENABLED, cfg.TEST.EXACT_RANKING = faiss, exact
    cfg.TEST.RERANK.ENABLED, cfg.TEST.ROC_ENABLED = rerank, roc
    with caplog.at_level(logging.INFO, logger="fastreid.evaluation.ranking"):
        ranking = build_ranking(cfg)
    assert type(ranking) is expected
    skipped = [r for r in caplog.records if "need every query-gallery distance" in r.getMessage()]
    assert len(skipped) == int((faiss or exact) and (rerank or roc))
    if expected is DenseRanking:
        assert ranking.rerank == RerankOptions.from_config(cfg) and ranking.roc_enabled == roc


def test_build_ranking_by_name_and_errors():
    cfg = get_cfg()
    cfg.TEST.RANKING = "ExactRanking"
    cfg.TEST.ROC_ENABLED = True  # an explicit name is used as given
    assert type(build_ranking(cfg)) is ExactRanking
    cfg.TEST.RANKING = "RecordingRanking"
    cfg.TEST.METRIC = "euclidean"
    assert build_ranking(cfg).tag == "euclidean"  # the strategy's from_config is used
    cfg.TEST.RANKING = "NoSuchRanking"
    with pytest.raises(KeyError, match="NoSuchRanking"):
        build_ranking(cfg)
    cfg.TEST.RANKING = "NotARanking"
    with pytest.raises(TypeError, match="not a RankingStrategy subclass"):
        build_ranking(cfg)


def _feed(ev, q, g, labels):
    pids = torch.from_numpy(np.concatenate([labels.q_pids, labels.g_pids]))
    camids = torch.from_numpy(np.concatenate([labels.q_camids, labels.g_camids]))
    ev.process({"targets": pids, "camids": camids}, torch.cat([q, g]))


def test_registered_strategy_is_used_by_the_evaluator_after_aqe():
    q, g, labels = _clustered(13, nq=6, ng=30)
    labels = RankLabels(**labels)
    cfg = get_cfg()
    cfg.TEST.RANKING = "RecordingRanking"
    cfg.TEST.AQE.ENABLED, cfg.TEST.AQE.QE_K = True, 3
    ev = ReidEvaluator(cfg, num_query=6, chunk_size=4)
    assert isinstance(ev.ranking, RecordingRanking) and ev.aqe == AQEOptions(enabled=True, qe_k=3)
    _feed(ev, q, g, labels)
    res = ev.evaluate()
    assert res["Rank-1"] == 25.0 and res["Rank-5"] == 100.0 and res["Rank-10"] == 100.0
    assert np.isclose(res["mAP"], 60.0) and np.isclose(res["mINP"], 20.0) and "TPR@FPR=1e-04" not in res
    (query, gallery, got_labels, context), = ev.ranking.calls
    want_q, want_g = average_query_expansion(q, g, qe_k=3, chunk_size=4)
    torch.testing.assert_close(query, want_q, rtol=0, atol=0)
    torch.testing.assert_close(gallery, want_g, rtol=0, atol=0)
    for a, b in zip(got_labels, labels):
        np.testing.assert_array_equal(a, b)
    assert context == RankingContext(metric="cosine", chunk_size=4)


def test_explicit_ranking_overrides_the_config():
    cfg = get_cfg()
    cfg.TEST.RANKING = "NoSuchRanking"  # not built: the explicit strategy wins
    mine = RecordingRanking()
    ev = ReidEvaluator(cfg, 4, ranking=mine)
    assert ev.ranking is mine and ReidEvaluator(num_query=4).ranking.__class__ is DenseRanking


def test_options_from_config_match_their_defaults():
    cfg = get_cfg()
    assert AQEOptions.from_config(cfg) == AQEOptions()
    assert RerankOptions.from_config(cfg) == RerankOptions()
    assert FaissOptions.from_config(cfg) == FaissOptions()
    cfg.TEST.AQE.QE_TIME, cfg.TEST.RERANK.LAMBDA, cfg.TEST.FAISS.TOPK = 2, 0.5, 7
    assert AQEOptions.from_config(cfg).kwargs() == {"qe_times": 2, "qe_k": 5, "alpha": 3.0}
    assert RerankOptions.from_config(cfg).kwargs() == {"k1": 20, "k2": 6, "lambda_value": 0.5}
    assert FaissOptions.from_config(cfg).kwargs() == {"topk": 7, "use_gpu": True}
    assert DenseRanking(cfg).rerank.lambda_value == 0.5 and FaissRanking(cfg).options.topk == 7


def test_evaluator_reports_the_requested_ranks_and_cuhk03_protocol():
    q, g, labels = _clustered(5, nq=8, ng=40)
    labels = RankLabels(**labels)
    dist = compute_distance_matrix(q, g, "euclidean").numpy()
    for cuhk03 in (False, True):
        ev = ReidEvaluator(len(q), metric="euclidean", ranks=(1, 3, 20), use_metric_cuhk03=cuhk03)
        _feed(ev, q, g, labels)
        results = ev.evaluate()
        cmc, all_ap, _ = evaluate_rank(dist, *labels, max_rank=50, use_metric_cuhk03=cuhk03)
        assert [k for k in results if k.startswith("Rank-")] == ["Rank-1", "Rank-3", "Rank-20"]
        for r in (1, 3, 20):
            assert results[f"Rank-{r}"] == pytest.approx(cmc[r - 1] * 100)
        assert results["mAP"] == pytest.approx(np.mean(all_ap) * 100)
        collected = ev.collected()
        assert torch.equal(collected["feats"], torch.cat([q, g]).float())
    with pytest.raises(ValueError, match="ranks"):
        ReidEvaluator(len(q), ranks=(0,))


def test_cuhk03_protocol_needs_dense_ranking():
    q, g, labels = _clustered(7, nq=4, ng=20)
    ev = ReidEvaluator(len(q), ranking=ExactRanking(), use_metric_cuhk03=True)
    _feed(ev, q, g, RankLabels(**labels))
    with pytest.raises(ValueError, match="DenseRanking"):
        ev.evaluate()
