"""The default configuration tree.

Every key and default of fast-reid's config reference is here under the same name, so that a config file
written for fast-reid loads unchanged. Keys that fastreid adds are marked ``(fastreid)``. Config files in
fast-reid's later schema (``SOLVER.AMP.ENABLED``, ``INPUT.FLIP.ENABLED``, ...) are translated onto this tree by
:mod:`fastreid.config.compat` when they are merged.

Units: schedules count epochs (``SOLVER.MAX_EPOCH``, ``SOLVER.STEPS``, ``SOLVER.DELAY_EPOCHS``,
``SOLVER.CHECKPOINT_PERIOD``, ``TEST.EVAL_PERIOD``) except where a key says iterations.
"""
from typing import Dict

import torch

from .config import CfgNode as CN

_C = CN()
# The default tree under a public name; fastreid.config.get_cfg() hands out copies of it.
DEFAULT_CONFIG = _C

# Schema version of this tree (fastreid). Bumped when a key is renamed; see fastreid.config.compat. A config
# file (e.g. a run's config.yaml) that sets another VERSION is an error when it is loaded.
_C.VERSION = 1

# -----------------------------------------------------------------------------
# MODEL
# -----------------------------------------------------------------------------
_C.MODEL = CN()
# Device to run on: "cuda", "cuda:N" or "cpu". Defaults to CUDA when there is one.
_C.MODEL.DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
# Name of the meta-architecture in META_ARCH_REGISTRY.
_C.MODEL.META_ARCHITECTURE = "Baseline"
# Module names (prefixes) frozen during the first SOLVER.FREEZE_ITERS iterations while the rest trains
# (fast-reid's meaning: [backbone] trains the new heads first, torchreid's two-stepped transfer learning).
_C.MODEL.FREEZE_LAYERS = [""]
# MoCo memory size (number of queued features; MODEL.META_ARCHITECTURE "MoCo"). At least SOLVER.IMS_PER_BATCH.
_C.MODEL.QUEUE_SIZE = 8192
# (fastreid) MoCo (MODEL.META_ARCHITECTURE "MoCo"): its momentum encoder and its memory loss, fast-reid's
# pairwise CosFace loss of the batch against the queued keys.
_C.MODEL.MOCO = CN()
# EMA momentum of the momentum (key) encoder per iteration, in [0, 1] (1 = never updated).
_C.MODEL.MOCO.MOMENTUM = 0.999
# Cosine margin of the memory loss (on the negatives).
_C.MODEL.MOCO.MARGIN = 0.25
# Scale (gamma) of the cosine similarities in the memory loss.
_C.MODEL.MOCO.GAMMA = 32.0
# Weight of the memory loss term loss_mb in the total loss.
_C.MODEL.MOCO.SCALE = 1.0
# Channels-last (NHWC) weights and inputs (fastreid): faster convolutions on CPUs with oneDNN and on GPUs
# with tensor cores (measured in docs/benchmarks.md).
_C.MODEL.CHANNELS_LAST = False
# (fastreid) Numeric precision of training and inference: "auto" (CPU: bfloat16 autocast where the CPU has
# native bf16 matmuls and a quick check finds them faster than float32, else float32; CUDA: float32, or with
# SOLVER.FP16_ENABLED bfloat16 where the GPU supports it and float16 otherwise), or "fp32", "bf16", "fp16" to force
# one. The choice and its reason are logged.
_C.MODEL.PRECISION = "auto"
# (fastreid) Compile the model with torch.compile for training and inference (opt-in; the first iterations pay
# the compile time).
_C.MODEL.COMPILE = False
# (fastreid) Temporal pooling of VideoBaseline, by name in TEMPORAL_POOL_REGISTRY: "avg" (TemporalAvgPool) and
# "max" (TemporalMaxPool) as torchreid's pooling_method, or "attention" (TemporalAttentionPool, learned
# per-frame weights); it pools the backbone's per-frame maps into one map per tracklet.
_C.MODEL.TEMPORAL_POOL = "avg"

# ---------------------------------------------------------------------------- #
# Backbone options
# ---------------------------------------------------------------------------- #
_C.MODEL.BACKBONE = CN()
# Name of the backbone builder in BACKBONE_REGISTRY.
_C.MODEL.BACKBONE.NAME = "build_resnet_backbone"
# Depth or variant of the backbone, e.g. "18x", "50x", "101x"; "base" for ViT.
_C.MODEL.BACKBONE.DEPTH = "50x"
# Stride of the last stage (1 keeps a 16x8 map at 256x128 input).
_C.MODEL.BACKBONE.LAST_STRIDE = 1
# Backbone feature dimension (channels of the last stage).
_C.MODEL.BACKBONE.FEAT_DIM = 2048
# Normalization of the convolution layers, by name in NORM_REGISTRY: BN, syncBN, GhostBN, FrozenBN, GN.
_C.MODEL.BACKBONE.NORM = "BN"
# Use IBN-a blocks.
_C.MODEL.BACKBONE.WITH_IBN = False
# Use squeeze-and-excitation blocks.
_C.MODEL.BACKBONE.WITH_SE = False
# Use non-local blocks.
_C.MODEL.BACKBONE.WITH_NL = False
# Inner width (channels) of each non-local block: 1 as fast-reid and AGW build them (their checkpoints need it);
# 0 = half the block's input channels, as in Wang et al. 2018.
_C.MODEL.BACKBONE.NL_INTER_CHANNELS = 1
# Max pool of the ResNet stem (build_resnet_backbone), 3x3 stride 2: "ceil" = no padding, ceil mode, as
# fast-reid's ResNet (its checkpoints need it); "padded" = padding 1, as torchvision's and torchreid's ResNet.
# ResNeXt and ResNeSt always use "padded", as fast-reid builds them.
_C.MODEL.BACKBONE.STEM_POOL = "ceil"
# Library model name for the adapters: a timm name (`timm.list_models()`) for build_timm_backbone, a torchvision
# name (`torchvision.models.list_models()`) for build_torchvision_backbone, e.g. "legacy_seresnet50".
_C.MODEL.BACKBONE.ARCH = ""
# Initialise from ImageNet-pretrained weights.
_C.MODEL.BACKBONE.PRETRAIN = True
# Local file of pretrained weights ("" = look in the torch hub cache).
_C.MODEL.BACKBONE.PRETRAIN_PATH = ""
# ViT patch-embedding stride (fastreid; from fast-reid's later schema).
_C.MODEL.BACKBONE.STRIDE_SIZE = (16, 16)
# ViT side-information-embedding coefficient.
_C.MODEL.BACKBONE.SIE_COE = 3.0
# ViT dropout rate.
_C.MODEL.BACKBONE.DROP_RATIO = 0.0
# ViT stochastic-depth (drop path) rate.
_C.MODEL.BACKBONE.DROP_PATH_RATIO = 0.1
# ViT attention dropout rate.
_C.MODEL.BACKBONE.ATT_DROP_RATE = 0.0

# ---------------------------------------------------------------------------- #
# REID HEADS options
# ---------------------------------------------------------------------------- #
_C.MODEL.HEADS = CN()
# Name of the head in REID_HEADS_REGISTRY.
_C.MODEL.HEADS.NAME = "EmbeddingHead"
# Normalization of the head's layers, by name in NORM_REGISTRY.
_C.MODEL.HEADS.NORM = "BN"
# Number of identities; 0 = taken from the training set.
_C.MODEL.HEADS.NUM_CLASSES = 0
# Embedding dimension of the optional 1x1 reduction (TorchreidHead: width of the fc layer after the pooling);
# 0 = no reduction. The heads of torchreid's re-id architectures (PCBHead, HACNNHead, MuDeepHead, ResNetMidHead)
# read it as the width of their reduction / fc layers, 0 meaning torchreid's default.
_C.MODEL.HEADS.EMBEDDING_DIM = 0
# Horizontal stripes the map is pooled into by part heads (PCBHead: 6 for pcb_p6, 4 for pcb_p4).
_C.MODEL.HEADS.NUM_PARTS = 6
# Use a BNNeck before the classifier.
_C.MODEL.HEADS.WITH_BNNECK = True
# Feature given to metric losses: "before" or "after" the BNNeck.
_C.MODEL.HEADS.NECK_FEAT = "before"
# Pooling layer ("avgpool" / "GlobalAvgPool", "maxpool", "gempool", "gempoolP", ...).
_C.MODEL.HEADS.POOL_LAYER = "avgpool"
# Classification layer ("linear" / "Linear", "arcSoftmax", "circleSoftmax", "cosSoftmax").
_C.MODEL.HEADS.CLS_LAYER = "linear"
# Margin and scale of margin-based classification layers.
_C.MODEL.HEADS.MARGIN = 0.15
_C.MODEL.HEADS.SCALE = 128

# ---------------------------------------------------------------------------- #
# REID LOSSES options
# ---------------------------------------------------------------------------- #
_C.MODEL.LOSSES = CN()
# Names of the losses summed during training, each weighted by its SCALE.
_C.MODEL.LOSSES.NAME = ("CrossEntropyLoss",)

# Cross-entropy: EPSILON 0 = no label smoothing, -1 = adaptive smoothing with ALPHA.
_C.MODEL.LOSSES.CE = CN()
_C.MODEL.LOSSES.CE.EPSILON = 0.0
_C.MODEL.LOSSES.CE.ALPHA = 0.2
_C.MODEL.LOSSES.CE.SCALE = 1.0

# Focal loss.
_C.MODEL.LOSSES.FL = CN()
_C.MODEL.LOSSES.FL.ALPHA = 0.25
_C.MODEL.LOSSES.FL.GAMMA = 2
_C.MODEL.LOSSES.FL.SCALE = 1.0

# Triplet loss: MARGIN 0 = soft margin; HARD_MINING False = softmax-weighted mining.
_C.MODEL.LOSSES.TRI = CN()
_C.MODEL.LOSSES.TRI.MARGIN = 0.3
_C.MODEL.LOSSES.TRI.NORM_FEAT = False
_C.MODEL.LOSSES.TRI.HARD_MINING = True
_C.MODEL.LOSSES.TRI.SCALE = 1.0

# Pairwise circle loss.
_C.MODEL.LOSSES.CIRCLE = CN()
_C.MODEL.LOSSES.CIRCLE.MARGIN = 0.25
_C.MODEL.LOSSES.CIRCLE.GAMMA = 128
_C.MODEL.LOSSES.CIRCLE.SCALE = 1.0

# Pairwise CosFace loss.
_C.MODEL.LOSSES.COSFACE = CN()
_C.MODEL.LOSSES.COSFACE.MARGIN = 0.25
_C.MODEL.LOSSES.COSFACE.GAMMA = 128
_C.MODEL.LOSSES.COSFACE.SCALE = 1.0

# Checkpoint file loaded into the whole model.
_C.MODEL.WEIGHTS = ""
# Load MODEL.WEIGHTS even when parts of the model other than the classifier do not match (they keep their
# initialisation); False makes such a load (e.g. another architecture's weights) an error with a table of
# what matched. A classifier of another width (fine-tuning on other identities) is accepted either way.
_C.MODEL.WEIGHTS_PARTIAL = False

# Per-channel pixel mean and std (0-255 scale) for input normalisation.
_C.MODEL.PIXEL_MEAN = [0.485 * 255, 0.456 * 255, 0.406 * 255]
_C.MODEL.PIXEL_STD = [0.229 * 255, 0.224 * 255, 0.225 * 255]

# -----------------------------------------------------------------------------
# KNOWLEDGE DISTILLATION
# -----------------------------------------------------------------------------
_C.KD = CN()
# Config file and weights of the teacher model, read by MODEL.META_ARCHITECTURE Distiller. Several teachers: a
# YAML list (fast-reid's later schema) or a Python list literal, '("t1.yml", "t2.yml")', one weight file each.
_C.KD.MODEL_CONFIG = ""
_C.KD.MODEL_WEIGHTS = ""
# Exponential moving average of the student as teacher (fastreid; from fast-reid's later schema): each training
# step, teacher = MOMENTUM * teacher + (1 - MOMENTUM) * student.
_C.KD.EMA = CN()
_C.KD.EMA.ENABLED = False
_C.KD.EMA.MOMENTUM = 0.999
# (fastreid) Divergence between the softened class distributions of student and teachers: "kl" (KL(teacher ||
# student), Hinton et al. 2015), "js" (Jensen-Shannon) or "symkl" (the symmetric KL that fast-reid's Distiller
# computes and logs as loss_jsdiv).
_C.KD.LOSS = "kl"
# (fastreid) Softmax temperature of the distillation (fast-reid's fixed 16); the divergence is multiplied by
# its square.
_C.KD.TEMPERATURE = 16.0
# (fastreid) Weight of the distillation term loss_kd in the total loss.
_C.KD.SCALE = 1.0

# -----------------------------------------------------------------------------
# INPUT
# -----------------------------------------------------------------------------
_C.INPUT = CN()
# Image size (height, width) in training and test.
_C.INPUT.SIZE_TRAIN = [256, 128]
_C.INPUT.SIZE_TEST = [256, 128]

# Steps of the train / test image pipeline, in order: names in TRANSFORM_REGISTRY (fastreid). A built-in step
# is skipped when its INPUT keys disable it; list a registered step of your own to add it.
_C.INPUT.TRAIN_TRANSFORMS = [
    "auto_augment", "resize", "crop", "pad_crop", "flip", "color_jitter", "affine", "augmix", "to_tensor",
    "random_erasing", "random_patch",
]
_C.INPUT.TEST_TRANSFORMS = ["resize", "crop", "to_tensor"]

# (fastreid) Tracklet (video) datasets: frames sampled per tracklet (count) by SAMPLE_METHOD_TRAIN / _TEST.
_C.INPUT.SEQ_LEN = 15
# (fastreid) Frame sampling in training, torchreid's sample_method: "random" (SEQ_LEN frames at random, kept in
# temporal order; repeated when the tracklet is shorter) or "evenly" (every (n // SEQ_LEN)-th frame; the last
# frame repeated when shorter).
_C.INPUT.SAMPLE_METHOD_TRAIN = "random"
# (fastreid) Frame sampling in test: "evenly" (SEQ_LEN frames) or "all" (every frame, one tracklet per batch
# whatever TEST.IMS_PER_BATCH, run through the model TEST.FRAME_CHUNK frames at a time).
_C.INPUT.SAMPLE_METHOD_TEST = "evenly"

# Random horizontal flip.
_C.INPUT.DO_FLIP = True
_C.INPUT.FLIP_PROB = 0.5

# Pad by PADDING pixels, then random-crop back to SIZE_TRAIN.
_C.INPUT.DO_PAD = True
_C.INPUT.PADDING_MODE = "constant"
_C.INPUT.PADDING = 10

# Random resized crop (fastreid; from fast-reid's later schema). SIZE is (height, width).
_C.INPUT.CROP = CN()
_C.INPUT.CROP.ENABLED = False
_C.INPUT.CROP.SIZE = [224, 224]
_C.INPUT.CROP.SCALE = [0.16, 1.0]
_C.INPUT.CROP.RATIO = [3.0 / 4.0, 4.0 / 3.0]

# Random colour jitter.
_C.INPUT.CJ = CN()
_C.INPUT.CJ.ENABLED = False
_C.INPUT.CJ.PROB = 0.5
_C.INPUT.CJ.BRIGHTNESS = 0.15
_C.INPUT.CJ.CONTRAST = 0.15
_C.INPUT.CJ.SATURATION = 0.1
_C.INPUT.CJ.HUE = 0.1

# Random affine transform.
_C.INPUT.DO_AFFINE = False

# AutoAugment, applied with probability AUTOAUG_PROB.
_C.INPUT.DO_AUTOAUG = False
_C.INPUT.AUTOAUG_PROB = 0.0

# AugMix, applied with probability AUGMIX_PROB.
_C.INPUT.DO_AUGMIX = False
_C.INPUT.AUGMIX_PROB = 0.0

# Random erasing, filled with VALUE (0-255 scale).
_C.INPUT.REA = CN()
_C.INPUT.REA.ENABLED = False
_C.INPUT.REA.PROB = 0.5
_C.INPUT.REA.VALUE = [0.485 * 255, 0.456 * 255, 0.406 * 255]
# Random patch.
_C.INPUT.RPT = CN()
_C.INPUT.RPT.ENABLED = False
_C.INPUT.RPT.PROB = 0.5

# -----------------------------------------------------------------------------
# Dataset
# -----------------------------------------------------------------------------
_C.DATASETS = CN()
# Names of the training datasets in DATASET_REGISTRY.
_C.DATASETS.NAMES = ("Market1501",)
# Names of the test datasets.
_C.DATASETS.TESTS = ("Market1501",)
# Train on train + query + gallery, relabelled.
_C.DATASETS.COMBINEALL = False
# Root folder of the datasets (fastreid); "" = $FASTREID_DATASETS, else "datasets".
_C.DATASETS.ROOT = ""
# Market-1501 (fastreid): add the 500k distractor images (folder images/) to the gallery.
_C.DATASETS.MARKET1501 = CN()
_C.DATASETS.MARKET1501.WITH_500K = False
# CUHK03 (fastreid): labeled (True) or detected (False) boxes; classic 20-split protocol (True) or the new
# 767/700 protocol (False); which split to use (0-based; the new protocol has one).
_C.DATASETS.CUHK03 = CN()
_C.DATASETS.CUHK03.LABELED = False
_C.DATASETS.CUHK03.CLASSIC_SPLIT = False
_C.DATASETS.CUHK03.SPLIT_ID = 0
# Random train/test split index (0-based) of the small person sets: CUHK01, VIPeR, GRID, iLIDS, PRID (fastreid);
# also the official split (0-9) of the video sets iLIDSVID and PRID2011.
_C.DATASETS.SPLIT_ID = 0
# Video datasets (MARS, iLIDSVID, PRID2011, DukeMTMCVidReID; fastreid): drop tracklets with fewer frames than
# this from every subset, as torchreid's min_seq_len; 0 = keep all.
_C.DATASETS.MIN_SEQ_LEN = 0
# VehicleID test list size for "VehicleID" (fastreid): 800, 1600 or 2400 vehicles (13164 = all).
_C.DATASETS.VEHICLEID = CN()
_C.DATASETS.VEHICLEID.TEST_SIZE = 800
# VeRi-Wild test list size for "VeRiWild" (fastreid): 3000, 5000 or 10000 vehicles.
_C.DATASETS.VERIWILD = CN()
_C.DATASETS.VERIWILD.TEST_SIZE = 3000
# SyntheticPerson (fastreid): identities (the first half, rounded down to a multiple of 4 and at least 4,
# train; the rest test), cameras (2-9), images per identity,
# image height and width in pixels, generation seed.
_C.DATASETS.SYNTHETIC = CN()
_C.DATASETS.SYNTHETIC.NUM_IDS = 200
_C.DATASETS.SYNTHETIC.NUM_CAMERAS = 6
_C.DATASETS.SYNTHETIC.IMAGES_PER_ID = 20
_C.DATASETS.SYNTHETIC.HEIGHT = 128
_C.DATASETS.SYNTHETIC.WIDTH = 64
_C.DATASETS.SYNTHETIC.SEED = 0
# SyntheticTracklets (fastreid): the SyntheticPerson identities (same train/test split and look-alike families)
# filmed as short tracklets: identities, cameras (2-9; each identity is seen by 2 or more), tracklets per
# (identity, camera), frames per tracklet, frame height and width in pixels, generation seed.
_C.DATASETS.SYNTHETIC_TRACKLETS = CN()
_C.DATASETS.SYNTHETIC_TRACKLETS.NUM_IDS = 100
_C.DATASETS.SYNTHETIC_TRACKLETS.NUM_CAMERAS = 4
_C.DATASETS.SYNTHETIC_TRACKLETS.TRACKLETS_PER_CAMERA = 2
_C.DATASETS.SYNTHETIC_TRACKLETS.FRAMES = 12
_C.DATASETS.SYNTHETIC_TRACKLETS.HEIGHT = 128
_C.DATASETS.SYNTHETIC_TRACKLETS.WIDTH = 64
_C.DATASETS.SYNTHETIC_TRACKLETS.SEED = 0
# Fraction of frames on which the tracker failed (a misplaced box or a switch to another person), as in MARS's
# automatically tracked tracklets; 0 = every frame shows its identity, well framed.
_C.DATASETS.SYNTHETIC_TRACKLETS.FAILURE_RATE = 0.0
# CustomReID (fastreid): folder relative to DATASETS.ROOT (or absolute) holding the data. Either image folders
# (names "<pid>_c<cam>...", e.g. 0002_c1_0001.jpg) or list files with lines "relative/path pid camid".
# Paths inside are relative to DIR. An empty *_LIST means the matching *_DIR folder is used.
_C.DATASETS.CUSTOM = CN()
_C.DATASETS.CUSTOM.DIR = "custom"
_C.DATASETS.CUSTOM.TRAIN_DIR = "train"
_C.DATASETS.CUSTOM.QUERY_DIR = "query"
_C.DATASETS.CUSTOM.GALLERY_DIR = "gallery"
_C.DATASETS.CUSTOM.TRAIN_LIST = ""
_C.DATASETS.CUSTOM.QUERY_LIST = ""
_C.DATASETS.CUSTOM.GALLERY_LIST = ""

# -----------------------------------------------------------------------------
# DataLoader
# -----------------------------------------------------------------------------
_C.DATALOADER = CN()
# P x K identity sampling (P identities, NUM_INSTANCE images each).
_C.DATALOADER.PK_SAMPLER = True
# With PK_SAMPLER: naive identity sampling (True) or camera-balanced sampling (False).
_C.DATALOADER.NAIVE_WAY = True
# Images per identity in a batch (K).
_C.DATALOADER.NUM_INSTANCE = 4
# Loader worker processes.
_C.DATALOADER.NUM_WORKERS = 8
# Training sampler by name (fastreid; fast-reid's later schema). "" = chosen by PK_SAMPLER / NAIVE_WAY.
_C.DATALOADER.SAMPLER_TRAIN = ""
# Sampling weight of each training dataset for the set re-weight sampler ([] = by size).
_C.DATALOADER.SET_WEIGHT = []
# Skip unreadable/truncated images with a warning instead of failing (fastreid); a skipped sample is replaced by
# the next readable one in the dataset.
_C.DATALOADER.SKIP_BAD_IMAGES = False

# ---------------------------------------------------------------------------- #
# Solver
# ---------------------------------------------------------------------------- #
_C.SOLVER = CN()

# Automatic mixed precision, fast-reid's switch: read through MODEL.PRECISION "auto", which on CUDA turns it into
# bfloat16 or float16 autocast; on a CPU "auto" decides by the CPU's bf16 speed, and MODEL.PRECISION bf16 forces it.
_C.SOLVER.FP16_ENABLED = False

# Optimizer name: SGD, Adam, AdamW, ...
_C.SOLVER.OPT = "Adam"
# (fastreid) How the optimizer updates its parameters, for torch.optim optimizers that offer a choice:
# "for-loop" (one parameter at a time), "foreach" (batched over the tensors of a group), "fused" (one kernel),
# or "auto": fused where the optimizer and the parameters' device support it (several times faster optimizer
# steps on CPU, measured by benchmarks/bench_step.py), else foreach, else the for-loop. Same updates either way.
_C.SOLVER.OPTIMIZER_IMPL = "auto"

# Training length in epochs.
_C.SOLVER.MAX_EPOCH = 120

# Base learning rate of all parameter groups.
_C.SOLVER.BASE_LR = 3e-4
# Learning-rate multipliers for biases and for the heads.
_C.SOLVER.BIAS_LR_FACTOR = 1.0
_C.SOLVER.HEADS_LR_FACTOR = 1.0

# SGD momentum, and whether it is Nesterov momentum.
_C.SOLVER.MOMENTUM = 0.9
_C.SOLVER.NESTEROV = True

# Weight decay of weights, and of biases.
_C.SOLVER.WEIGHT_DECAY = 0.0005
_C.SOLVER.WEIGHT_DECAY_BIAS = 0.0
# Weight decay of normalization layers (fastreid; from fast-reid's later schema).
_C.SOLVER.WEIGHT_DECAY_NORM = 0.0005

# Learning-rate schedule, by name in LR_SCHEDULER_REGISTRY: MultiStepLR or CosineAnnealingLR.
_C.SOLVER.SCHED = "MultiStepLR"

# Epochs at constant learning rate before the schedule starts.
_C.SOLVER.DELAY_EPOCHS = 0

# MultiStepLR: decay factor and milestone epochs.
_C.SOLVER.GAMMA = 0.1
_C.SOLVER.STEPS = [30, 55]

# CosineAnnealingLR: final learning rate.
_C.SOLVER.ETA_MIN_LR = 1e-7

# Warmup: start factor, length in iterations, method (linear, constant, exp).
_C.SOLVER.WARMUP_FACTOR = 0.1
_C.SOLVER.WARMUP_ITERS = 1000
_C.SOLVER.WARMUP_METHOD = "linear"

# Iterations (from the start) during which MODEL.FREEZE_LAYERS are frozen.
_C.SOLVER.FREEZE_ITERS = 0

# Iterations (at the end of training) during which the classifier is frozen.
_C.SOLVER.FREEZE_FC_ITERS = 0

# Stochastic weight averaging over the last ITER iterations, a snapshot every PERIOD iterations; with
# LR_SCHED a cosine learning-rate cycle per period from base LR x LR_FACTOR down to ETA_MIN_LR (fastreid).
_C.SOLVER.SWA = CN()
_C.SOLVER.SWA.ENABLED = False
_C.SOLVER.SWA.ITER = 10
_C.SOLVER.SWA.PERIOD = 2
_C.SOLVER.SWA.LR_FACTOR = 10.0
_C.SOLVER.SWA.ETA_MIN_LR = 3.5e-6
_C.SOLVER.SWA.LR_SCHED = False

# Gradient clipping (fastreid; from fast-reid's later schema). CLIP_TYPE: "value" or "norm".
_C.SOLVER.CLIP_GRADIENTS = CN()
_C.SOLVER.CLIP_GRADIENTS.ENABLED = False
_C.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = "norm"
_C.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = 5.0
_C.SOLVER.CLIP_GRADIENTS.NORM_TYPE = 2.0

# Checkpoint period in epochs.
_C.SOLVER.CHECKPOINT_PERIOD = 20
# Additional checkpoint period in iterations, for mid-epoch resume (fastreid); 0 = none.
_C.SOLVER.CHECKPOINT_PERIOD_ITERS = 0
# Period of the console / metrics.json / tensorboard writers, in iterations (fastreid).
_C.SOLVER.LOG_PERIOD = 20

# Number of images per batch across all processes.
_C.SOLVER.IMS_PER_BATCH = 64

# ---------------------------------------------------------------------------- #
# Test
# ---------------------------------------------------------------------------- #
_C.TEST = CN()

# Evaluation period in epochs.
_C.TEST.EVAL_PERIOD = 20

# Number of images per batch in one process.
_C.TEST.IMS_PER_BATCH = 64
# (fastreid) Most frames a video model (VideoBaseline) runs through its backbone at once in evaluation (count),
# which bounds inference memory for long tracklets (INPUT.SAMPLE_METHOD_TEST "all"); 0 = the whole batch at once.
_C.TEST.FRAME_CHUNK = 128
# Distance metric: "cosine" or "euclidean".
_C.TEST.METRIC = "cosine"
# Report TPR at fixed FPRs.
_C.TEST.ROC_ENABLED = False
# Average the features of each image and its mirror.
_C.TEST.FLIP_ENABLED = False
# (fastreid) Rank on float64 distances (float32 screen with exact re-checks; bool): numbers that do not
# depend on the distance chunking, identical to the faiss path. Ignored with RERANK or ROC_ENABLED.
_C.TEST.EXACT_RANKING = False
# (fastreid) Ranking strategy by registered name (RANKING_REGISTRY: "DenseRanking", "ExactRanking",
# "FaissRanking" or a project's); "" chooses from FAISS.ENABLED, EXACT_RANKING, RERANK and ROC_ENABLED.
_C.TEST.RANKING = ""

# Average query expansion.
_C.TEST.AQE = CN()
_C.TEST.AQE.ENABLED = False
_C.TEST.AQE.ALPHA = 3.0
_C.TEST.AQE.QE_TIME = 1
_C.TEST.AQE.QE_K = 5

# k-reciprocal re-ranking.
_C.TEST.RERANK = CN()
_C.TEST.RERANK.ENABLED = False
_C.TEST.RERANK.K1 = 20
_C.TEST.RERANK.K2 = 6
_C.TEST.RERANK.LAMBDA = 0.3

# (fastreid) Rank from a faiss top-k search; CMC/mAP/mINP stay exact (float64 re-check of the
# candidates, full-row fallback per query). Ignored with RERANK or ROC_ENABLED.
_C.TEST.FAISS = CN()
_C.TEST.FAISS.ENABLED = False
# (fastreid) Gallery neighbours searched per query (count; raised to the CMC length).
_C.TEST.FAISS.TOPK = 100
# (fastreid) Use a GPU index when faiss-gpu and CUDA exist (bool); False forces the CPU index.
_C.TEST.FAISS.USE_GPU = True

# Precise BatchNorm statistics before evaluation.
_C.TEST.PRECISE_BN = CN()
_C.TEST.PRECISE_BN.ENABLED = False
_C.TEST.PRECISE_BN.DATASET = "Market1501"
_C.TEST.PRECISE_BN.NUM_ITER = 300

# ---------------------------------------------------------------------------- #
# Misc options
# ---------------------------------------------------------------------------- #
# Folder of logs, checkpoints and results.
_C.OUTPUT_DIR = "logs/"

# Benchmark cudnn algorithms (useful with fixed input sizes).
_C.CUDNN_BENCHMARK = False

# Random seed (fastreid); a negative value draws a fresh seed, which is logged. Each rank adds its rank.
_C.SEED = -1
# Use only deterministic algorithms (torch.use_deterministic_algorithms; cudnn autotuning off), so that two
# runs with the same SEED give the same numbers (fastreid). Slower on GPUs.
_C.DETERMINISTIC = False

# Keys of fast-reid's config reference that fastreid accepts, so that fast-reid's files load, but does not
# implement: key -> what the user should know. tests/config/test_every_key_is_read.py requires every key of the
# tree to have a reader in the source or an entry here, and fastreid.config.load_config logs a WARNING naming
# each of these keys set to a value other than its default. A key whose silent ignore would give wrong results
# must be implemented, or rejected by the code that should read it, rather than listed here. Empty: every key of
# the tree is read.
UNSUPPORTED_KEYS: Dict[str, str] = {}
