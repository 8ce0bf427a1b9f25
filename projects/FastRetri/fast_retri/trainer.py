"""``RetriTrainer``: fastreid's DefaultTrainer evaluating Recall@K on retrieval test sets."""
from typing import Optional

from fastreid.config import CfgNode
from fastreid.data import CommDataset, DatasetCheckError, build_reid_test_loader
from fastreid.data.datasets import build_dataset
from fastreid.data.transforms import build_transforms
from fastreid.engine import DefaultTrainer

from .datasets import RetrievalDataset
from .evaluation import RetrievalEvaluator

__all__ = ["RetriTrainer"]


def _retrieval_test_set(cfg: CfgNode, dataset_name: str, **kwargs) -> RetrievalDataset:
    dataset = build_dataset(dataset_name, cfg, **kwargs)
    if not isinstance(dataset, RetrievalDataset):
        raise DatasetCheckError(f"DATASETS.TESTS: '{dataset_name}' is a {type(dataset).__name__}, not a retrieval "
                                "dataset (such as CUB, Cars196, SOP or SyntheticRetrieval); evaluate re-id datasets "
                                "with tools/train_net.py")
    return dataset


class RetriTrainer(DefaultTrainer):
    """Trains as DefaultTrainer (any fastreid model and loss) and evaluates every dataset of DATASETS.TESTS, a
    :class:`~fast_retri.datasets.RetrievalDataset`, with :class:`~fast_retri.evaluation.RetrievalEvaluator`:
    each test image is read once and queries all the others."""

    @classmethod
    def check_datasets(cls, cfg: CfgNode, train_set) -> None:
        """fastreid's checks, and every test set is a retrieval dataset."""
        super().check_datasets(cfg, train_set)
        for name in cfg.DATASETS.TESTS:
            _retrieval_test_set(cfg, name, verbose=False)

    @classmethod
    def build_test_loader(cls, cfg: CfgNode, dataset_name: str):
        dataset = _retrieval_test_set(cfg, dataset_name)
        test_set = CommDataset(dataset.test, build_transforms(cfg, is_train=False), relabel=False,
                               skip_bad_images=cfg.DATALOADER.SKIP_BAD_IMAGES)
        return build_reid_test_loader(cfg, test_set=test_set, num_query=len(test_set))

    @classmethod
    def build_evaluator(cls, cfg: CfgNode, dataset_name: str, num_query: int, output_dir: Optional[str] = None):
        return RetrievalEvaluator(cfg)
