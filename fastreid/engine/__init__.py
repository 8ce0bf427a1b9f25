"""Training: the train loop and hooks, ``DefaultTrainer``, launch, and command-line set-up."""
from .ddp import create_ddp_model, unwrap_model
from .defaults import default_argument_parser, default_setup, setup_cfg
from .hooks import HookBase
from .launch import launch, launch_from_args
from .train_loop import AMPTrainer, SimpleTrainer, TrainerBase, build_step
from .trainer import DefaultTrainer

__all__ = [
    "AMPTrainer",
    "DefaultTrainer",
    "HookBase",
    "SimpleTrainer",
    "TrainerBase",
    "build_step",
    "create_ddp_model",
    "default_argument_parser",
    "default_setup",
    "launch",
    "launch_from_args",
    "setup_cfg",
    "unwrap_model",
]
