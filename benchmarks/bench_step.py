"""Cost of fastreid's training step against a plain PyTorch loop of the same FLOPs, measured interleaved.

    python benchmarks/bench_step.py                      # BoT R50, 256x128, batch 64, bf16
    python benchmarks/bench_step.py --channels-last --compile
    python benchmarks/bench_step.py --tiny --profile     # seconds-long development run

"fastreid" rows run ``run_step()`` of a real ``DefaultTrainer`` built from the config (BoT ResNet-50 by
default, MODEL.DEVICE cpu, no pretraining), between its hooks' ``before_step`` / ``after_step`` (timer, LR
schedule, checkpointer, metric writers), on one prebuilt in-memory batch so that data loading is excluded.
"plain" rows run a torchvision ResNet of the same depth with layer4 at stride 1 (the recipe's last stride, so
the same FLOPs; fvcore counts of both are printed), global average pooling, a linear classifier,
cross-entropy and Adam, in the same precision and memory layout. Rows differ in the optimizer
implementation (SOLVER.OPTIMIZER_IMPL: for-loop, foreach, fused) and, with --compile, torch.compile
(MODEL.COMPILE). Variants take turns in every round; the table shows each one's median step time and the
median over rounds of its ratio to the plain loop with the same optimizer implementation and compile flag.

"% of peak" counts fvcore forward MACs x 2 (x 3 for a training step: forward plus about twice that for
backward) per second against the best square-matmul FLOP/s of the step's precision measured in the same
run; inference is an eval-mode forward pass under no_grad.

--profile then times sections of the steps of each uncompiled pair (data hand-off, forward, losses, accuracy
logging, backward, optimizer, event storage, hooks) by wrapping the trainer's pieces with timers.
"""
import argparse
import contextlib
import statistics
import sys
import tempfile
import time
import types
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import interleaved_medians, machine_summary, matmul_peak, median_ratio  # noqa: E402

from fastreid.config import CfgNode, get_cfg  # noqa: E402
from fastreid.engine import DefaultTrainer  # noqa: E402
from fastreid.engine.compilation import compile_model  # noqa: E402
from fastreid.modeling.complexity import count_params_and_flops  # noqa: E402
from fastreid.utils.events import EventStorage  # noqa: E402

IMPLS = ("for-loop", "foreach", "fused")
_TORCHVISION_RESNETS = {"18x": "resnet18", "34x": "resnet34", "50x": "resnet50", "101x": "resnet101"}


# ---------------------------------------------------------------------------------------------------------
# fastreid: a DefaultTrainer on one prebuilt batch
# ---------------------------------------------------------------------------------------------------------
class _Dataset:
    def __init__(self, num_classes: int, size: int) -> None:
        self.num_classes, self._size = num_classes, size

    def __len__(self) -> int:
        return self._size


class _FixedBatchLoader:
    """An endless loader yielding one prebuilt batch: the step's data hand-off without data loading."""

    def __init__(self, batch: Dict[str, torch.Tensor], num_classes: int) -> None:
        self.batch = batch
        # Enough images that no epoch ends (no evaluation or checkpoint) during the benchmark.
        self.dataset = _Dataset(num_classes, 10**9)

    def __iter__(self) -> Iterator[Dict[str, torch.Tensor]]:
        while True:
            yield self.batch


def synthetic_batch(batch: int, size: Tuple[int, int], num_classes: int, num_instance: int) -> Dict[str, torch.Tensor]:
    """A P×K batch of 0-255 images as the reid loader yields it."""
    generator = torch.Generator().manual_seed(0)
    targets = torch.arange(batch) // max(1, num_instance) % num_classes
    return {"images": torch.rand(batch, 3, *size, generator=generator) * 255, "targets": targets}


class BenchTrainer(DefaultTrainer):
    """DefaultTrainer whose training loader repeats one synthetic batch (no dataset on disk)."""

    @classmethod
    def build_train_loader(cls, cfg: CfgNode) -> _FixedBatchLoader:
        num_classes = cfg.MODEL.HEADS.NUM_CLASSES
        batch = synthetic_batch(cfg.SOLVER.IMS_PER_BATCH, tuple(cfg.INPUT.SIZE_TRAIN), num_classes,
                                cfg.DATALOADER.NUM_INSTANCE)
        return _FixedBatchLoader(batch, num_classes)

    @classmethod
    def check_datasets(cls, cfg: CfgNode, train_set: Any) -> None:
        pass


class HookedStep:
    """One training iteration as ``TrainerBase.train`` runs it: before_step hooks, run_step, after_step hooks.

    Each instance owns its event storage and makes it the active one during its step, so several trainers
    can take turns in one process.
    """

    def __init__(self, trainer: DefaultTrainer) -> None:
        self.trainer = trainer
        trainer.iters_per_epoch = len(trainer.data_loader.dataset) // trainer.cfg.SOLVER.IMS_PER_BATCH
        trainer.max_iter = trainer.max_epoch * trainer.iters_per_epoch
        trainer.iter = trainer.start_iter = trainer.epoch = trainer.start_epoch = 0
        trainer.storage = EventStorage(0)
        with trainer.storage:
            trainer.before_train()
            trainer.before_epoch()

    def __call__(self) -> None:
        t = self.trainer
        with t.storage:
            t.before_step()
            t.run_step()
            t.after_step()
        t.iter += 1


def fastreid_cfg(args: argparse.Namespace, impl: str, compiled: bool, output_dir: str) -> CfgNode:
    cfg = get_cfg()
    cfg.merge_from_file(args.config)
    overrides = [
        "MODEL.DEVICE", "cpu", "MODEL.BACKBONE.PRETRAIN", "False", "MODEL.HEADS.NUM_CLASSES", str(args.classes),
        "INPUT.SIZE_TRAIN", str(list(args.size)), "INPUT.SIZE_TEST", str(list(args.size)),
        "SOLVER.IMS_PER_BATCH", str(args.batch), "SOLVER.FP16_ENABLED", str(args.precision == "bf16"),
        "SOLVER.OPTIMIZER_IMPL", impl, "MODEL.COMPILE", str(compiled),
        "MODEL.CHANNELS_LAST", str(args.channels_last), "DATASETS.TESTS", "()", "OUTPUT_DIR", output_dir,
        "MODEL.PRECISION", args.precision,
    ]
    if args.tiny:
        overrides += ["MODEL.BACKBONE.DEPTH", "18x", "MODEL.BACKBONE.FEAT_DIM", "512"]
    cfg.merge_from_list(overrides)
    return cfg


# ---------------------------------------------------------------------------------------------------------
# the plain loop
# ---------------------------------------------------------------------------------------------------------
def plain_resnet(depth: str, num_classes: int) -> nn.Module:
    """torchvision ResNet of ``depth`` with layer4 at stride 1 and a ``num_classes`` linear classifier."""
    if depth not in _TORCHVISION_RESNETS:
        raise ValueError(f"No torchvision ResNet for MODEL.BACKBONE.DEPTH {depth!r}; use one of "
                         f"{sorted(_TORCHVISION_RESNETS)}.")
    model = getattr(torchvision.models, _TORCHVISION_RESNETS[depth])(num_classes=num_classes)
    for m in model.layer4[0].modules():
        if isinstance(m, nn.Conv2d) and m.stride == (2, 2):
            m.stride = (1, 1)
    return model


class _Sections:
    """Accumulates wall time per named section; a no-op unless enabled."""

    def __init__(self, enabled: bool = False) -> None:
        self.enabled = enabled
        self.seconds: Dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start


class PlainStep:
    """forward, cross-entropy, zero_grad, backward, Adam step: the loop a plain PyTorch script would write."""

    def __init__(self, model: nn.Module, batch: Dict[str, torch.Tensor], args: argparse.Namespace,
                 impl: str) -> None:
        self.model = model.train()
        impl_kwargs = {"fused": True} if impl == "fused" else {"foreach": impl == "foreach"}
        self.optimizer = torch.optim.Adam(model.parameters(), lr=3.5e-4, weight_decay=5e-4, **impl_kwargs)
        memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
        self.images = batch["images"].contiguous(memory_format=memory_format)
        self.targets = batch["targets"]
        self.autocast = args.precision == "bf16"
        self.sections = _Sections()

    def __call__(self) -> None:
        s = self.sections
        with s("forward"), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.autocast):
            logits = self.model(self.images)
        with s("losses"), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.autocast):
            loss = F.cross_entropy(logits, self.targets)
        with s("optimizer"):
            self.optimizer.zero_grad(set_to_none=True)
        with s("backward"):
            loss.backward()
        with s("optimizer"):
            self.optimizer.step()


# ---------------------------------------------------------------------------------------------------------
# measurement
# ---------------------------------------------------------------------------------------------------------
def forward_macs(model: nn.Module, size: Tuple[int, int]) -> int:
    """fvcore MACs of one image's eval-mode forward pass."""
    return count_params_and_flops(model, size)[1]


def eval_forward(model: nn.Module, images: torch.Tensor, autocast: bool) -> Callable[[], None]:
    def run() -> None:
        was_training = model.training
        model.eval()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            model(images)
        model.train(was_training)
    return run


def build_variants(args: argparse.Namespace, output_dir: str):
    """The (fastreid, plain) pairs to compare, keyed by their shared optimizer implementation and compile flag."""
    pairs = {}
    for compiled in [False, True] if args.compile else [False]:
        for impl in (args.impls if not compiled else [args.impls[-1]]):
            torch.manual_seed(0)
            cfg = fastreid_cfg(args, impl, compiled, f"{output_dir}/{impl}-{compiled}")
            trainer = BenchTrainer(cfg)
            plain_model = plain_resnet(cfg.MODEL.BACKBONE.DEPTH, args.classes)
            if args.channels_last:
                plain_model = plain_model.to(memory_format=torch.channels_last)
            if compiled:
                compile_model(plain_model)
            plain = PlainStep(plain_model, trainer.data_loader.batch, args, impl)
            pairs[(impl, compiled)] = (HookedStep(trainer), plain)
    return pairs


def run_benchmark(args: argparse.Namespace) -> None:
    print(machine_summary())
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    peak = matmul_peak(dtype, size=1024 if args.tiny else 4096)
    print(f"matmul peak ({args.precision}): {peak / 1e9:.0f} GFLOP/s")
    with tempfile.TemporaryDirectory() as output_dir:
        pairs = build_variants(args, output_dir)
        first_fastreid, first_plain = next(iter(pairs.values()))
        size = tuple(args.size)
        recipe_macs = forward_macs(first_fastreid.trainer.model, size)
        plain_macs = forward_macs(first_plain.model, size)
        print(f"fvcore forward MACs per image: fastreid {recipe_macs / 1e9:.3f} G, plain {plain_macs / 1e9:.3f} G "
              f"(ratio {recipe_macs / plain_macs:.3f})")
        variants = {}
        for (impl, compiled), (fr, plain) in pairs.items():
            tag = f"{impl}{' +compile' if compiled else ''}"
            variants[f"fastreid {tag}"] = fr
            variants[f"plain {tag}"] = plain
        per_round = interleaved_medians(variants, iters=args.iters, rounds=args.rounds)
        _print_table(args, pairs, per_round, recipe_macs, plain_macs, peak)
        _print_inference(args, pairs, recipe_macs, plain_macs, peak)
        if args.profile:
            # Compiled rows are left out: the timers would be traced into (and break) the compiled graphs.
            for (impl, compiled), (fr, plain) in pairs.items():
                if not compiled:
                    _print_profile(impl, fr, plain, args.iters)


def _print_table(args, pairs, per_round, recipe_macs, plain_macs, peak) -> None:
    print(f"\nTraining step: batch {args.batch}, {args.size[0]}x{args.size[1]}, {args.precision}, "
          f"{'channels-last' if args.channels_last else 'NCHW'}; {args.rounds} rounds x {args.iters} steps.")
    print("| loop | optimizer | compile | step s (median) | vs plain (median of round ratios) | % of peak |")
    print("|---|---|---|---|---|---|")
    reference = f"plain {args.impls[0]}"
    for (impl, compiled) in pairs:
        tag = f"{impl}{' +compile' if compiled else ''}"
        for loop, macs in (("fastreid", recipe_macs), ("plain", plain_macs)):
            name = f"{loop} {tag}"
            seconds = statistics.median(per_round[name])
            ratio = median_ratio(per_round, name, f"plain {tag}")
            vs_first = median_ratio(per_round, name, reference)
            util = 3 * 2 * macs * args.batch / seconds / peak
            print(f"| {loop} | {impl} | {'yes' if compiled else 'no'} | {seconds:.4f} | {ratio:.3f} "
                  f"({vs_first:.3f} vs {reference}) | {100 * util:.0f}% |")


def _print_inference(args, pairs, recipe_macs, plain_macs, peak) -> None:
    autocast = args.precision == "bf16"
    print("\n| inference | compile | forward s (median) | % of peak |")
    print("|---|---|---|---|")
    seen = set()
    for (impl, compiled), (fr, plain) in pairs.items():
        if compiled in seen:
            continue
        seen.add(compiled)
        images = fr.trainer.data_loader.batch["images"]
        loops = {"fastreid": (eval_forward(fr.trainer.model, images, autocast), recipe_macs),
                 "plain": (eval_forward(plain.model, plain.images, autocast), plain_macs)}
        per_round = interleaved_medians({k: v[0] for k, v in loops.items()}, iters=args.iters, rounds=args.rounds)
        for loop, (_, macs) in loops.items():
            seconds = statistics.median(per_round[loop])
            print(f"| {loop} | {'yes' if compiled else 'no'} | {seconds:.4f} | "
                  f"{100 * 2 * macs * args.batch / seconds / peak:.0f}% |")


# ---------------------------------------------------------------------------------------------------------
# profile: timed sections of the real trainer's step
# ---------------------------------------------------------------------------------------------------------
def _timed(sections: _Sections, name: str, fn: Callable) -> Callable:
    def wrapper(*a, **k):
        with sections(name):
            return fn(*a, **k)
    return wrapper


@contextlib.contextmanager
def _instrumented(step: HookedStep, sections: _Sections) -> Iterator[None]:
    """Wraps the pieces of ``step``'s trainer with section timers; restores them on exit."""
    import fastreid.modeling.meta_arch.baseline as baseline

    outer, inner = step.trainer, step.trainer._trainer
    model = inner.model
    patches: List[Tuple[Any, str, str]] = [
        (inner, "next_batch", "data hand-off"),
        (outer, "before_step", "hooks"),
        (outer, "after_step", "hooks"),
        (model, "preprocess_image", "forward"),
        (model.backbone, "forward", "forward"),
        (model.heads, "forward", "forward"),
        (model, "training_losses", "losses"),
        (inner.optimizer, "zero_grad", "optimizer"),
        (inner.optimizer, "step", "optimizer"),
        (inner, "_write_metrics", "event storage"),
        (baseline, "log_accuracy", "accuracy logging"),
        (torch.autograd, "backward", "backward"),
    ]
    saved = []
    for obj, attr, name in patches:
        had_own = isinstance(obj, types.ModuleType) or attr in vars(obj)
        original = getattr(obj, attr)
        saved.append((obj, attr, original, had_own))
        setattr(obj, attr, _timed(sections, name, original))
    try:
        yield
    finally:
        for obj, attr, original, had_own in reversed(saved):
            if had_own:
                setattr(obj, attr, original)
            else:
                delattr(obj, attr)


def _print_profile(tag: str, fr: HookedStep, plain: PlainStep, iters: int) -> None:
    fr_sections, plain.sections = _Sections(True), _Sections(True)
    fr_total = plain_total = 0.0
    with _instrumented(fr, fr_sections):
        for _ in range(iters):
            start = time.perf_counter()
            fr()
            fr_total += time.perf_counter() - start
    for _ in range(iters):
        start = time.perf_counter()
        plain()
        plain_total += time.perf_counter() - start
    plain.sections.enabled = False
    print(f"\nProfile ({tag}), ms per step, mean of {iters}:")
    print("| section | fastreid | plain |")
    print("|---|---|---|")
    names = ["data hand-off", "forward", "losses", "accuracy logging", "backward", "optimizer", "event storage",
             "hooks"]
    for name in names:
        print(f"| {name} | {1e3 * fr_sections.seconds[name] / iters:.1f} | "
              f"{1e3 * plain.sections.seconds.get(name, 0.0) / iters:.1f} |")
    fr_other = fr_total - sum(fr_sections.seconds.values())
    plain_other = plain_total - sum(plain.sections.seconds.values())
    print(f"| other | {1e3 * fr_other / iters:.1f} | {1e3 * plain_other / iters:.1f} |")
    print(f"| total | {1e3 * fr_total / iters:.1f} | {1e3 * plain_total / iters:.1f} |")


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/Market1501/bagtricks_R50.yml")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, nargs=2, default=[256, 128], metavar=("H", "W"))
    parser.add_argument("--classes", type=int, default=751, help="identities of the classifier (Market-1501: 751)")
    # An R50 step at batch 64, 256x128 takes seconds on a few cores: the defaults keep the run under an hour.
    parser.add_argument("--iters", type=int, default=2, help="timed steps per variant and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--impls", nargs="+", choices=IMPLS, default=list(IMPLS),
                        help="optimizer implementations to compare (the first is the reference)")
    parser.add_argument("--compile", action="store_true", help="add torch.compile rows (last --impls entry)")
    parser.add_argument("--profile", action="store_true", help="print a per-section breakdown of each loop")
    parser.add_argument("--tiny", action="store_true",
                        help="ResNet-18, batch 8 at 64x32, 2 rounds x 2 steps: a seconds-long development run")
    args = parser.parse_args(argv)
    if args.tiny:
        args.batch, args.size, args.iters, args.rounds = 8, [64, 32], 2, 2
    return args


if __name__ == "__main__":
    run_benchmark(parse_args())
