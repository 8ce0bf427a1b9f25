"""Option objects of the evaluation stages, one per ``TEST`` config group.

Each is a frozen dataclass whose defaults are the config defaults, built from a config with
``from_config(cfg)``; ``enabled`` mirrors the group's ``ENABLED`` key.
"""
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Dict, Type, TypeVar

__all__ = ["AQEOptions", "FaissOptions", "RerankOptions"]

_T = TypeVar("_T", bound="_StageOptions")


@dataclass(frozen=True)
class _StageOptions:
    # The config group under TEST, and the config key of every field besides ``enabled`` (ENABLED).
    config_group: ClassVar[str]
    config_keys: ClassVar[Dict[str, str]]
    enabled: bool = False

    @classmethod
    def from_config(cls: Type[_T], cfg) -> _T:
        """The options set in ``cfg.TEST.<config_group>``."""
        group = cfg.TEST[cls.config_group]
        return cls(enabled=group.ENABLED, **{name: group[key] for name, key in cls.config_keys.items()})

    def kwargs(self) -> Dict[str, Any]:
        """The options except ``enabled``, as keyword arguments of the stage's function."""
        return {k: v for k, v in asdict(self).items() if k != "enabled"}


@dataclass(frozen=True)
class AQEOptions(_StageOptions):
    """Average query expansion (``TEST.AQE``), see :func:`~fastreid.evaluation.average_query_expansion`.

    Attributes:
        enabled: expand query and gallery features before ranking (ENABLED).
        qe_times: expansion rounds (QE_TIME).
        qe_k: neighbours averaged per feature, itself included (QE_K).
        alpha: exponent of the cosine similarity weights (ALPHA).
    """

    config_group: ClassVar[str] = "AQE"
    config_keys: ClassVar[Dict[str, str]] = {"qe_times": "QE_TIME", "qe_k": "QE_K", "alpha": "ALPHA"}
    qe_times: int = 1
    qe_k: int = 5
    alpha: float = 3.0


@dataclass(frozen=True)
class RerankOptions(_StageOptions):
    """k-reciprocal re-ranking (``TEST.RERANK``), see :func:`~fastreid.evaluation.re_ranking`.

    Attributes:
        enabled: rank the re-ranked distances instead of the base distances (ENABLED).
        k1, k2: neighbourhood and local query expansion sizes (K1, K2).
        lambda_value: weight of the original distance (LAMBDA).
    """

    config_group: ClassVar[str] = "RERANK"
    config_keys: ClassVar[Dict[str, str]] = {"k1": "K1", "k2": "K2", "lambda_value": "LAMBDA"}
    k1: int = 20
    k2: int = 6
    lambda_value: float = 0.3


@dataclass(frozen=True)
class FaissOptions(_StageOptions):
    """faiss top-k ranking (``TEST.FAISS``), see :func:`~fastreid.evaluation.evaluate_rank_faiss`.

    Attributes:
        enabled: :func:`~fastreid.evaluation.build_ranking` picks the faiss strategy (unless re-ranking or
            ROC need every distance); :class:`~fastreid.evaluation.FaissRanking` itself ignores it (ENABLED).
        topk: gallery neighbours searched per query (TOPK).
        use_gpu: GPU index when faiss-gpu and CUDA exist (USE_GPU).
    """

    config_group: ClassVar[str] = "FAISS"
    config_keys: ClassVar[Dict[str, str]] = {"topk": "TOPK", "use_gpu": "USE_GPU"}
    topk: int = 100
    use_gpu: bool = True
