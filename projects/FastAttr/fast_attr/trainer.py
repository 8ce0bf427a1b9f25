"""``AttrTrainer``: fastreid's DefaultTrainer with attribute data, the weighted BCE's ratios and AttrEvaluator."""
from typing import Optional

from fastreid.config import CfgNode
from fastreid.data import DatasetCheckError
from fastreid.data.samplers import SAMPLER_REGISTRY, IdentitySampler, sampler_name
from fastreid.engine import DefaultTrainer, unwrap_model

from .data import build_attr_test_loader, build_attr_train_loader, build_attribute_datasets
from .evaluation import AttrEvaluator
from .meta_arch import AttrBaseline

__all__ = ["AttrTrainer"]


class AttrTrainer(DefaultTrainer):
    """Trains an attribute model (:class:`~fast_attr.meta_arch.AttrBaseline`) on DATASETS.NAMES and evaluates
    every dataset of DATASETS.TESTS with :class:`~fast_attr.evaluation.AttrEvaluator`.

    Only the public seams of DefaultTrainer change: the loaders (:class:`~fast_attr.data.AttributeSet`
    batches), the dataset check, the evaluator, and, once the model is built, the positive ratios of the
    training set handed to the weighted BCE.
    """

    def __init__(self, cfg: CfgNode) -> None:
        super().__init__(cfg)
        model = unwrap_model(self.model)
        if not isinstance(model, AttrBaseline):
            raise TypeError(f"MODEL.META_ARCHITECTURE is {cfg.MODEL.META_ARCHITECTURE}: FastAttr trains AttrBaseline, "
                            "whose targets are attribute vectors")
        model.set_positive_ratios(self.data_loader.dataset.positive_ratios)

    @classmethod
    def build_train_loader(cls, cfg: CfgNode):
        return build_attr_train_loader(cfg)

    @classmethod
    def build_precise_bn_loader(cls, cfg: CfgNode):
        return build_attr_train_loader(cfg, names=[cfg.TEST.PRECISE_BN.DATASET])

    @classmethod
    def check_datasets(cls, cfg: CfgNode, train_set) -> None:
        """Every test set is an attribute dataset with the training set's attributes and test images, and the
        training sampler does not group images by identity (attribute batches are plain shuffles)."""
        problems = []
        dl = cfg.DATALOADER
        name = sampler_name(dl.SAMPLER_TRAIN, dl.PK_SAMPLER, dl.NAIVE_WAY)
        sampler = SAMPLER_REGISTRY.get(name)
        if isinstance(sampler, type) and issubclass(sampler, IdentitySampler):
            problems.append(f"DATALOADER: the sampler {name} groups images by identity; FastAttr shuffles images: set "
                            "DATALOADER.SAMPLER_TRAIN TrainingSampler")
        for test_name in cfg.DATASETS.TESTS:
            dataset = build_attribute_datasets(cfg, "DATASETS.TESTS", [test_name], verbose=False)[0]
            if not dataset.test:
                problems.append(f"DATASETS.TESTS: '{test_name}' has no test image (read from "
                                f"{dataset.split_source('query')})")
            elif dataset.attribute_names != train_set.attribute_names:
                problems.append(f"DATASETS.TESTS: '{test_name}' has other attributes than the training set: "
                                f"{dataset.attribute_names} vs {train_set.attribute_names}")
        if problems:
            raise DatasetCheckError("\n".join(problems))

    @classmethod
    def test_weights(cls, cfg: CfgNode):
        """``--eval-only`` as DefaultTrainer's, with MODEL.HEADS.NUM_CLASSES 0 first set to the number of
        attributes of the first test set: the attribute classifier is the model's output, and it loads only
        into a classifier of its width."""
        if cfg.MODEL.HEADS.NUM_CLASSES == 0 and cfg.DATASETS.TESTS:
            test_set = build_attribute_datasets(cfg, "DATASETS.TESTS", cfg.DATASETS.TESTS[:1], verbose=False)[0]
            cfg = cls.auto_num_classes(cfg, len(test_set.attribute_names))
        return super().test_weights(cfg)

    @classmethod
    def build_test_loader(cls, cfg: CfgNode, dataset_name: str):
        return build_attr_test_loader(cfg, dataset_name)

    @classmethod
    def build_evaluator(cls, cfg: CfgNode, dataset_name: str, num_query: int, output_dir: Optional[str] = None):
        names = build_attribute_datasets(cfg, "DATASETS.TESTS", [dataset_name], verbose=False)[0].attribute_names
        return AttrEvaluator(cfg, attribute_names=names)
