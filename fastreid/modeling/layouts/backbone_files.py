"""Published ImageNet backbone files whose networks fastreid builds from a library under the library's names.

fast-reid and torchreid wrote some backbones themselves, and their published weight files name the layers as
those networks do; fastreid builds the same networks with torchvision's or timm's modules, so the keys differ
while the tensors are the same. Each :class:`BackboneLayout` here recognises one such file by a key only that
layout has and renames every key to the library's name (relative to the library's network; the fastreid
prefixes ``body.`` / ``backbone.`` are added by :func:`fastreid.utils.checkpoint_layouts.model_key`):

- fast-reid's MobileNetV2 (``features.N.conv.M``, ``conv``; the layout of tonylins' pytorch-mobilenet-v2 files)
  → torchvision's ``mobilenet_v2``;
- pycls's RegNetX / RegNetY (``*_dds_8gpu.pyth``, the state dict under ``"model_state"``; ``sN.bM.f.a``) → timm's
  ``regnetx_*`` / ``regnety_*``;
- pycls's EfficientNet (``EN-B*_dds_8gpu.pyth``; ``sN.bM.dwise``) → torchvision's ``efficientnet_b*``;
- torchreid's MobileNetV2 (``convN.M.dwconv2``) → fastreid's torchreid variant built from torchvision's blocks
  (applied by the torchreid layout, :mod:`fastreid.modeling.layouts.torchreid`).

fast-reid's MobileNetV3 is torchvision's network (its files are torchvision's) plus a final ``conv``, which
fastreid's backbone has under the same name, so its keys only need fastreid's prefixes (:func:`unprefixed`, which
serves any file of a network fastreid nests). The ImageNet classifiers are dropped.

The same layouts rename the ``backbone.*`` keys of fast-reid's reid checkpoints (:data:`FAST_REID_BACKBONES`,
applied by :mod:`fastreid.modeling.layouts.fast_reid`) and of torchreid's files (:data:`TORCHREID_BACKBONES`);
:func:`to_model_keys` is the one step all of them take.
"""
import logging
import re
from collections import OrderedDict
from typing import Any, Callable, Collection, Dict, Mapping, NamedTuple, Optional, Sequence, Set

import torch

from fastreid.utils.checkpoint_layouts import CHECKPOINT_LAYOUT_REGISTRY, model_key

__all__ = [
    "BackboneLayout",
    "FAST_REID_BACKBONES",
    "FAST_REID_MOBILENETV2",
    "PYCLS_EFFNET",
    "PYCLS_REGNET",
    "TORCHREID_BACKBONES",
    "TORCHREID_MOBILENETV2",
    "rename_keys",
    "to_model_keys",
    "unprefixed",
]

logger = logging.getLogger(__name__)

# (key, all keys of the file) -> the library's key, or None for a tensor the backbone has no place for.
Renamer = Callable[[str, Collection[str]], Optional[str]]


class BackboneLayout(NamedTuple):
    """One framework's key layout of one network.

    Attributes:
        name: for messages, e.g. "pycls RegNet".
        signature: matches at least one key of every file in this layout and no key of the library's network
            (nor of a fastreid checkpoint, whose keys start with ``backbone.`` / ``heads.``).
        rename: the library's key for a key of the file (None: dropped, e.g. the ImageNet classifier).
    """

    name: str
    signature: "re.Pattern[str]"
    rename: Renamer

    def recognises(self, state_dict: Mapping[str, Any]) -> bool:
        """Whether ``state_dict``'s keys are in this layout."""
        return any(isinstance(k, str) and self.signature.match(k) for k in state_dict)


def rename_keys(state_dict: Mapping[str, Any], layout: BackboneLayout) -> "OrderedDict[str, Any]":
    """``state_dict`` with ``layout``'s keys renamed to the library's; the keys it drops are logged."""
    keys = set(state_dict)
    renamed: "OrderedDict[str, Any]" = OrderedDict()
    dropped = []
    for key, value in state_dict.items():
        new = layout.rename(key, keys)
        if new is None:
            dropped.append(key)
        else:
            renamed[new] = value
    if dropped:
        logger.info("%s file: %s left out (no counterpart in the backbone)", layout.name, ", ".join(dropped))
    return renamed


def _indices(keys: Collection[str], pattern: str) -> Set[int]:
    """The integers captured by ``pattern``'s first group over ``keys``."""
    regex = re.compile(pattern)
    return {int(m.group(1)) for k in keys if (m := regex.match(k))}


# --- fast-reid's MobileNetV2 -------------------------------------------------------------------------------
# A block's ``conv`` Sequential is [pw, bn, relu6,] dw, bn, relu6, pw-linear, bn (the first block has no
# expansion); torchvision groups conv+bn+act as Conv2dNormActivation: [conv.0.0/0.1,] conv.K.0/K.1, conv.K+1, conv.K+2.
_MBV2_EXPANDED = {0: "0.0", 1: "0.1", 3: "1.0", 4: "1.1", 6: "2", 7: "3"}
_MBV2_PLAIN = {0: "0.0", 1: "0.1", 3: "1", 4: "2"}
_MBV2_BLOCK = re.compile(r"^features\.(\d+)\.conv\.(\d+)\.(.+)$")
_MBV2_LAST = re.compile(r"^conv\.(\d+)\.(.+)$")


def _fast_reid_mobilenetv2(key: str, keys: Collection[str]) -> Optional[str]:
    if key.startswith("classifier."):
        return None
    block = _MBV2_BLOCK.match(key)
    if block:
        n, i, rest = block.groups()
        table = _MBV2_EXPANDED if f"features.{n}.conv.6.weight" in keys else _MBV2_PLAIN
        return f"features.{n}.conv.{table[int(i)]}.{rest}"
    last = _MBV2_LAST.match(key)
    if last:  # the final 1x1 convolution is torchvision's last ``features`` entry
        position = max(_indices(keys, r"^features\.(\d+)\.")) + 1
        return f"features.{position}.{last.group(1)}.{last.group(2)}"
    return key


FAST_REID_MOBILENETV2 = BackboneLayout(
    "fast-reid MobileNetV2", re.compile(r"^features\.\d+\.conv\.[0467]\.weight$"), _fast_reid_mobilenetv2
)

# --- pycls's RegNet ----------------------------------------------------------------------------------------
_REGNET_PARTS = {
    "proj": "downsample.conv", "bn": "downsample.bn",
    "f.a": "conv1.conv", "f.a_bn": "conv1.bn", "f.b": "conv2.conv", "f.b_bn": "conv2.bn",
    "f.c": "conv3.conv", "f.c_bn": "conv3.bn", "f.se.f_ex.0": "se.fc1", "f.se.f_ex.2": "se.fc2",
}
_REGNET_BLOCK = re.compile(r"^(s\d+\.b\d+)\.(.+)\.(weight|bias|running_mean|running_var|num_batches_tracked)$")


def _pycls_regnet(key: str, keys: Collection[str]) -> Optional[str]:
    if key.startswith("head."):
        return None
    block = _REGNET_BLOCK.match(key)
    if block:
        prefix, part, tensor = block.groups()
        return f"{prefix}.{_REGNET_PARTS[part]}.{tensor}" if part in _REGNET_PARTS else key
    return key  # stem.conv / stem.bn are timm's names too


PYCLS_REGNET = BackboneLayout("pycls RegNet", re.compile(r"^s\d+\.b\d+\.f\.a\.weight$"), _pycls_regnet)

# --- pycls's EfficientNet ----------------------------------------------------------------------------------
# An MBConv block is [exp, exp_bn,] dwise, dwise_bn, se.f_ex.{0,2}, lin_proj, lin_proj_bn; torchvision's is
# ``block``: [0: expansion,] K: depthwise, K+1: SE (fc1, fc2), K+2: projection, each conv+bn as ``.0`` / ``.1``.
_EFFNET_BLOCK = re.compile(r"^s(\d+)\.b(\d+)\.(exp|dwise|se|lin_proj)(_bn)?\.(.+)$")
_EFFNET_ORDER = {"exp": -1, "dwise": 0, "se": 1, "lin_proj": 2}
_EFFNET_STEM_HEAD = {"stem.conv.": "0.0.", "stem.bn.": "0.1.", "head.conv.": "{head}.0.", "head.conv_bn.": "{head}.1."}


def _pycls_effnet(key: str, keys: Collection[str]) -> Optional[str]:
    if key.startswith("head.fc."):
        return None
    block = _EFFNET_BLOCK.match(key)
    if block:
        stage, index, part, bn, rest = block.groups()
        position = _EFFNET_ORDER[part] + (f"s{stage}.b{index}.exp.weight" in keys)
        if part == "se":
            rest = rest.replace("f_ex.0.", "fc1.").replace("f_ex.2.", "fc2.")
        else:
            rest = ("1." if bn else "0.") + rest
        return f"features.{stage}.{int(index) - 1}.block.{position}.{rest}"
    for prefix, target in _EFFNET_STEM_HEAD.items():
        if key.startswith(prefix):
            head = max(_indices(keys, r"^s(\d+)\.")) + 1
            return "features." + target.format(head=head) + key[len(prefix):]
    return key


PYCLS_EFFNET = BackboneLayout("pycls EfficientNet", re.compile(r"^s\d+\.b\d+\.dwise\.weight$"), _pycls_effnet)

# --- torchreid's MobileNetV2 -------------------------------------------------------------------------------
# Stages conv2 … conv8 of Bottlenecks (conv1: 1x1 ConvBlock, dwconv2: 3x3 ConvBlock, conv3: conv + bn) between
# the conv1 and conv9 ConvBlocks; fastreid's network numbers all of them in one ``features`` Sequential.
_TR_BLOCK = re.compile(r"^conv([2-8])\.(\d+)\.(conv1|dwconv2|conv3)\.(conv\.|bn\.|0\.|1\.)(.+)$")
_TR_ENDS = re.compile(r"^conv([19])\.(conv|bn)\.(.+)$")
_TR_PARTS = {("conv1", "conv."): "0.0", ("conv1", "bn."): "0.1", ("dwconv2", "conv."): "1.0",
             ("dwconv2", "bn."): "1.1", ("conv3", "0."): "2", ("conv3", "1."): "3"}


def _torchreid_mobilenetv2(key: str, keys: Collection[str]) -> Optional[str]:
    blocks = {stage: len(_indices(keys, rf"^conv{stage}\.(\d+)\.")) for stage in range(2, 9)}
    block = _TR_BLOCK.match(key)
    if block:
        stage, index, part, sub, rest = block.groups()
        position = 1 + sum(blocks[s] for s in range(2, int(stage))) + int(index)
        return f"features.{position}.conv.{_TR_PARTS[part, sub]}.{rest}"
    end = _TR_ENDS.match(key)
    if end:
        stage, sub, rest = end.groups()
        position = 0 if stage == "1" else 1 + sum(blocks.values())
        return f"features.{position}.{0 if sub == 'conv' else 1}.{rest}"
    return key  # fc, classifier: torchreid's head


TORCHREID_MOBILENETV2 = BackboneLayout(
    "torchreid MobileNetV2", re.compile(r"^conv[2-8]\.\d+\.dwconv2\.conv\.weight$"), _torchreid_mobilenetv2
)

TORCHREID_BACKBONES = (TORCHREID_MOBILENETV2,)
"""torchreid's networks whose keys the torchreid layout renames before mapping them onto a fastreid model."""

FAST_REID_BACKBONES = (FAST_REID_MOBILENETV2, PYCLS_REGNET, PYCLS_EFFNET)
"""fast-reid's backbones whose keys differ from the library networks fastreid builds (fast-reid's RegNet and
EfficientNet are pycls's); the fast-reid layout renames them under ``backbone.`` in fast-reid's checkpoints."""


def to_model_keys(state_dict: Mapping[str, Any], model_keys: Collection[str],
                  layouts: Sequence[BackboneLayout] = ()) -> "OrderedDict[str, Any]":
    """A network's weights named as a fastreid module that holds the network names them.

    Args:
        state_dict: the network's weights, keys as in the network kept at the top level (e.g. a fast-reid
            backbone's keys without ``backbone.``).
        model_keys: the state-dict keys of the fastreid module the weights are for (a whole model, or a backbone).
        layouts: the layouts ``state_dict`` may be in; the first that recognises it renames its keys.

    Returns:
        ``state_dict`` renamed by the recognising layout (if any), each key then mapped by
        :func:`~fastreid.utils.checkpoint_layouts.model_key` (which adds the prefixes fastreid nests under).
    """
    layout = next((layout for layout in layouts if layout.recognises(state_dict)), None)
    if layout is not None:
        logger.info("Reading %s key names", layout.name)
        state_dict = rename_keys(state_dict, layout)
    return OrderedDict((model_key(k, model_keys), v) for k, v in state_dict.items())


def _weights(checkpoint: Mapping[str, Any]) -> Optional[Mapping[str, Any]]:
    """The state dict of a published file: bare, or under pycls's ``"model_state"`` (also when the file was
    wrapped as ``{"state_dict": file}``, as the torchreid API does); ``module.`` prefixes removed."""
    for candidate in (checkpoint, checkpoint.get("state_dict")):
        if not isinstance(candidate, Mapping):
            continue
        state = candidate.get("model_state", candidate)
        if isinstance(state, Mapping) and state and all(isinstance(v, torch.Tensor) for v in state.values()):
            return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    return None


def _converter(layout: BackboneLayout) -> Callable[[Dict[str, Any], Set[str]], Optional[Dict[str, Any]]]:
    def convert(checkpoint: Dict[str, Any], model_keys: Set[str]) -> Optional[Dict[str, Any]]:
        state = _weights(checkpoint)
        if state is None or not layout.recognises(state):
            return None
        return {"model": to_model_keys(state, model_keys, (layout,))}

    convert.__name__ = layout.name.lower().replace("-", "_").replace(" ", "_")
    convert.__doc__ = (f"A {layout.name} file in fastreid's layout (``{{'model': state dict}}`` with the model's "
                       f"keys), or None when ``checkpoint`` is not one.")
    return convert


# Registered under names that sort before "torchreid": that layout takes any bare state dict with a classifier.
for _layout in (FAST_REID_MOBILENETV2, PYCLS_REGNET, PYCLS_EFFNET):
    CHECKPOINT_LAYOUT_REGISTRY.register(_converter(_layout))


@CHECKPOINT_LAYOUT_REGISTRY.register()
def unprefixed(checkpoint: Dict[str, Any], model_keys: Set[str]) -> Optional[Dict[str, Any]]:
    """A network's own file (torchvision's, timm's, fast-reid's MobileNetV3 backbone) for a model that nests that
    network (``body.``, ``backbone.``, ``backbone.body.``), in fastreid's layout; None when ``checkpoint`` is not
    one: not a bare state dict, or none of whose keys the model has only under a prefix (a fastreid file).

    Tried after the frameworks' layouts (the name sorts last), so a torchreid file keeps its metadata.
    """
    state = _weights(checkpoint)
    if state is None:
        return None
    renamed = to_model_keys(state, model_keys)
    return {"model": renamed} if list(renamed) != list(state) else None
