"""The command-line arguments that choose a config, spelled and documented once for every tool.

``--config-file FILE`` names the YAML file and ``KEY VALUE`` pairs override single keys::

    tools/train_net.py --config-file configs/Market1501/bagtricks_R50.yml --resume SOLVER.BASE_LR 0.001
    tools/visualize_result.py --config-file CFG MODEL.WEIGHTS model.pth --num-vis 5 --opts TEST.METRIC cosine

Tools add them with :func:`add_config_arguments` and read the overrides with :func:`config_overrides`, which
they pass to :func:`fastreid.config.load_config` (or a wrapper of it).
"""
import argparse
from typing import Any, List

__all__ = ["add_config_arguments", "config_overrides"]

_OPTS_HELP = "config overrides as KEY VALUE pairs, e.g. MODEL.WEIGHTS model.pth SOLVER.BASE_LR 0.001"


def add_config_arguments(parser: argparse.ArgumentParser, *, required: bool = False, multiple: bool = False,
                         intermixed: bool = False) -> argparse.ArgumentParser:
    """Adds ``--config-file`` and the ``KEY VALUE`` config overrides to ``parser``.

    The overrides are the positional ``opts``. By default they are everything after the flags
    (``argparse.REMAINDER``: a flag written after the first override is taken as an override too), as in
    ``--config-file CFG --resume SOLVER.BASE_LR 0.1``. With ``intermixed`` they may stand anywhere among the
    flags (parse with ``parser.parse_intermixed_args``), and fast-reid's ``--opts KEY VALUE ...`` spelling is
    accepted as well (into ``more_opts``). Either way :func:`config_overrides` returns them all.

    Args:
        parser: the parser (or sub-command parser) to extend.
        required: ``--config-file`` must be given.
        multiple: ``--config-file`` takes one or more files and ``args.config_file`` is a list.
        intermixed: overrides may be mixed with the flags, and ``--opts`` is accepted.

    Returns:
        ``parser``, for chaining.
    """
    if multiple:
        parser.add_argument("--config-file", required=required, default=[], nargs="+", metavar="FILE",
                            help="one or more config files (YAML, with _BASE_ chains)")
    else:
        parser.add_argument("--config-file", required=required, default="", metavar="FILE",
                            help="path to a config file (YAML, with _BASE_ chains)")
    if intermixed:
        parser.add_argument("opts", nargs="*", default=[], help=f"{_OPTS_HELP}; allowed anywhere among the flags")
        parser.add_argument("--opts", dest="more_opts", nargs="+", default=[], metavar="KEY VALUE",
                            help="more config overrides (fast-reid's spelling)")
    else:
        parser.add_argument("opts", nargs=argparse.REMAINDER, help=f"{_OPTS_HELP}; they follow the flags")
    return parser


def config_overrides(args: argparse.Namespace) -> List[Any]:
    """The ``KEY VALUE`` overrides parsed by :func:`add_config_arguments`: ``opts`` then ``--opts``, flat."""
    return [*(getattr(args, "opts", None) or []), *(getattr(args, "more_opts", None) or [])]
