"""``add_config_arguments`` / ``config_overrides``: the config flags every tool shares."""
import argparse

import pytest

from fastreid.config import add_config_arguments, config_overrides


def _parser(**kwargs):
    parser = argparse.ArgumentParser(prog="tool")
    parser.add_argument("--flag", action="store_true")
    parser.add_argument("--num", type=int, default=0)
    return add_config_arguments(parser, **kwargs)


def test_returns_the_parser_it_extends():
    parser = argparse.ArgumentParser()
    assert add_config_arguments(parser) is parser


def test_trailing_overrides_take_everything_after_the_flags():
    args = _parser().parse_args(["--config-file", "a.yml", "--flag", "A.B", "1", "--num", "2"])
    assert (args.config_file, args.flag, args.num) == ("a.yml", True, 0)
    assert args.opts == ["A.B", "1", "--num", "2"]  # REMAINDER: a later flag is an override too
    assert config_overrides(args) == ["A.B", "1", "--num", "2"]
    defaults = _parser().parse_args([])
    assert (defaults.config_file, defaults.opts, config_overrides(defaults)) == ("", [], [])


def test_intermixed_overrides_and_fast_reid_spelling():
    parser = _parser(intermixed=True)
    args = parser.parse_intermixed_args(["A", "1", "--config-file", "c.yml", "--opts", "B", "2", "--num", "3",
                                         "C", "3"])
    assert (args.config_file, args.num) == ("c.yml", 3)
    assert (args.opts, args.more_opts) == (["A", "1", "C", "3"], ["B", "2"])
    assert config_overrides(args) == ["A", "1", "C", "3", "B", "2"]
    defaults = parser.parse_intermixed_args([])
    assert (defaults.config_file, defaults.opts, defaults.more_opts) == ("", [], [])


def test_required_and_multiple_files(capsys):
    with pytest.raises(SystemExit):
        _parser(required=True).parse_args(["A", "1"])
    assert "--config-file" in capsys.readouterr().err
    args = _parser(required=True, multiple=True).parse_args(["--config-file", "a.yml", "b.yml", "--flag", "A", "1"])
    assert (args.config_file, args.flag, args.opts) == (["a.yml", "b.yml"], True, ["A", "1"])
    assert _parser(multiple=True).parse_args([]).config_file == []


def test_fast_reid_opts_flag_only_where_overrides_may_be_intermixed():
    with pytest.raises(SystemExit):
        _parser().parse_args(["--opts", "A", "1"])


def test_overrides_of_a_namespace_without_them():
    assert config_overrides(argparse.Namespace()) == []
    assert config_overrides(argparse.Namespace(opts=None)) == []  # as a hand-built namespace may hold
    assert config_overrides(argparse.Namespace(opts=("A", 1), more_opts=["B", 2])) == ["A", 1, "B", 2]


def test_help_documents_the_flags():
    text = _parser(intermixed=True).format_help()
    assert "--config-file FILE" in text and "KEY VALUE" in text and "--opts" in text
