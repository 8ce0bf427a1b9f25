"""Every tool takes its config the same way, and every command line the docs show parses as documented."""
import argparse
import re
import shlex
from pathlib import Path

import pytest
from tool_loading import TOOLS, load_tool

from fastreid.config import add_config_arguments, config_overrides, get_cfg, load_config
from fastreid.engine import default_argument_parser, setup_cfg

REPO = TOOLS.parent
DOCS = [REPO / "GETTING_STARTED.md", REPO / "README.md", TOOLS / "deploy" / "README.md", *sorted((REPO / "docs").glob("*.md"))]
COMMAND = re.compile(r"^\s*(?:python\s+)?tools/([\w/]+)\.py\b(.*)$")


def _parser_of(tool):
    """(the parser ``tool`` parses its command line with, whether it parses intermixed)."""
    if tool in ("train_net", "demo"):
        return default_argument_parser(), False
    module = load_tool(tool)
    if tool == "search":
        return module.build_parser(), False
    if tool == "extract_features":
        return module.build_parser(), True
    return module.get_parser(), tool.startswith("visualize_")


def _is_store_evaluation(tool, argv):
    return tool == "extract_features" and argv[:1] == ("evaluate",)


# Tools whose config comes from --config-file and KEY VALUE overrides (the rest take no config).
CONFIG_TOOLS = ["train_net", "demo", "search", "visualize_result", "visualize_actmap", "model_complexity",
                "deploy/onnx_export", "deploy/torchscript_export", "extract_features"]
CONFIG_KEYS = set(get_cfg().full_keys())


def _documented_commands():
    """(source, tool, argv) of every ``[python] tools/<tool>.py ...`` line of the docs and the tools' docstrings,
    continuation lines joined; ``[optional]`` parts give two command lines: without them and with them (first
    alternative of ``a|b``, ``KEY VALUE ...`` as ``MODEL.DEVICE cpu``)."""
    for path in DOCS + [TOOLS / f"{tool}.py" for tool in CONFIG_TOOLS]:
        text = re.sub(r"\s*\\\n\s*", " ", path.read_text())
        for line in text.splitlines():
            match = COMMAND.match(line)
            if not match or match.group(1).startswith("dev/"):
                continue
            rest = match.group(2).split(" # ")[0].strip().rstrip("`")
            optional = re.sub(r"\[KEY VALUE \.\.\.\]", "[MODEL.DEVICE cpu]", rest)
            optional = re.sub(r"(\w+)(?:\|\w+)+", r"\1", optional).replace(" ...]", "]")
            for form in {re.sub(r"\s*\[[^\]]*\]", "", rest), optional.replace("[", "").replace("]", "")}:
                yield f"{path.relative_to(REPO)}: {match.group(1)} {form}", match.group(1), tuple(shlex.split(form))


COMMANDS = sorted(set(_documented_commands()))


def test_docs_show_every_config_tool():
    assert {tool for _, tool, _ in COMMANDS} >= set(CONFIG_TOOLS)
    assert any(source.startswith("GETTING_STARTED.md") for source, _, _ in COMMANDS)


@pytest.mark.parametrize("source, tool, argv", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_documented_command_parses_as_documented(source, tool, argv):
    if _is_store_evaluation(tool, argv):  # `extract_features.py evaluate` reads stores, no config
        args = load_tool(tool).build_eval_parser().parse_args(list(argv[1:]))
        assert args.query and args.gallery and not any(key in CONFIG_KEYS for key in argv)
        return
    parser, intermixed = _parser_of(tool)
    args = parser.parse_intermixed_args(list(argv)) if intermixed else parser.parse_args(list(argv))
    if "--config-file" in argv:
        named = argv[argv.index("--config-file") + 1]
        assert named in (args.config_file if isinstance(args.config_file, list) else [args.config_file])
    # Each documented KEY VALUE pair reaches the config, in order, and nothing else does.
    pairs = [token for i, key in enumerate(argv) if key in CONFIG_KEYS for token in argv[i:i + 2]]
    if tool in CONFIG_TOOLS:
        assert config_overrides(args) == pairs
    else:
        assert not pairs


def _flag_help(parser, dest):
    """(option strings, help, metavar, nargs) of the argument ``dest`` of ``parser`` or of its sub-commands."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set().union(*(_flag_help(sub, dest) for sub in action.choices.values()))
        if action.dest == dest:
            return {(tuple(action.option_strings), action.help, action.metavar)}
    return set()


@pytest.mark.parametrize("tool", CONFIG_TOOLS)
def test_config_arguments_are_the_shared_ones(tool):
    parser, intermixed = _parser_of(tool)
    reference = add_config_arguments(argparse.ArgumentParser(), intermixed=intermixed,
                                     multiple=tool == "model_complexity")
    for dest in ("config_file", "opts", "more_opts"):
        assert _flag_help(parser, dest) <= _flag_help(reference, dest) and \
            bool(_flag_help(parser, dest)) == bool(_flag_help(reference, dest)), (tool, dest)


def test_train_config_is_the_loaders(tmp_path):
    path = tmp_path / "run.yml"
    path.write_text("SOLVER:\n  BASE_LR: 0.5\n")
    argv = ["--config-file", str(path), "--resume", "SOLVER.MAX_EPOCH", "4", "MODEL.DEVICE", "cpu"]
    cfg = setup_cfg(default_argument_parser().parse_args(argv))
    assert cfg.is_frozen() and cfg == load_config(str(path), ["SOLVER.MAX_EPOCH", "4", "MODEL.DEVICE", "cpu"])
    base = get_cfg()
    assert setup_cfg(default_argument_parser().parse_args(argv), base) is base


def test_model_complexity_applies_overrides_to_each_file(setup_files, capsys):
    config_file, _ = setup_files
    load_tool("model_complexity").main(["--config-file", config_file, config_file, "--no-latency",
                                        "MODEL.HEADS.NUM_CLASSES", "5", "INPUT.SIZE_TEST", "[48, 24]"])
    out = capsys.readouterr().out
    assert "(MODEL.HEADS.NUM_CLASSES 5)" in out
    assert out.count(config_file) == 2 and out.count("48x24") == 2
