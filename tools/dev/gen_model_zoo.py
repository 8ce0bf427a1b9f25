#!/usr/bin/env python
"""Generate docs/model_zoo.md: every architecture of the model zoo with its parameters and GMACs.

    python tools/dev/gen_model_zoo.py            # (re)write docs/model_zoo.md
    python tools/dev/gen_model_zoo.py --check    # exit 1 when docs/model_zoo.md is stale

Each entry of ``fastreid.modeling.backbones.zoo.model_zoo()`` is built as ``fastreid.torchreid.models.build_model``
builds it (random weights, no classifier) and measured with ``fastreid.modeling.complexity.count_params_and_flops``
at its ``input_size`` (256×128; HACNN 160×64), beside the figures the reference systems publish
(``ZooEntry.published``). The page only depends on the architectures, so it is the same on every machine.
"""
import argparse
import logging
import re
import sys
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

logger = logging.getLogger("gen_model_zoo")

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "docs" / "model_zoo.md"

HEADERS = ("Model", "Backbone builder", "Input", "Params (M)", "GMACs", "Published params (M)", "Published GMACs")
# Columns 3 and 4 are measured by building the model; the others come from the zoo entry alone.
MEASURED_COLUMNS = (3, 4)
# The published figures: column and the key of ``ZooEntry.published`` (and of its ``published_notes``).
PUBLISHED_COLUMNS = ((5, "params_m"), (6, "gmacs"))

INTRO = """\
Every architecture fastreid builds by model name (torchreid's names, for `fastreid.torchreid.models.build_model`
and the `MODEL.BACKBONE.*` / `MODEL.HEADS.*` options the names stand for), with its size and cost next to the
figures torchreid and fast-reid publish. Each row is built with random weights and measured by
`fastreid.modeling.complexity.count_params_and_flops` (the library function behind `tools/model_complexity.py`):

- **Params (M)**: parameters of the model used at test time, in millions: backbone plus head (fc layers,
  BatchNorm), without the identity classifier (built for 0 classes), as torchreid counts them.
- **GMACs**: multiply-accumulates of one eval-mode forward pass of one image at the given input (H×W), in
  billions, counted by fvcore, where one fused multiply-add is one flop. fvcore counts convolutions, linear
  layers and matrix products, and also the normalisation layers (an eval-mode BatchNorm with an affine
  transform: two per element), the upsampling and the adaptive average pooling; element-wise activations,
  additions and other poolings count zero. torchreid's `compute_model_complexity` (the source of its published
  figures) counts only convolutions and linear layers by default, so for models with many norm layers on large
  maps fvcore's figure is a few percent higher.
- **Published**: the reference system's figure where it publishes one (torchreid's tables and model-zoo page,
  or fast-reid's); blank otherwise. A figure marked [n] is explained in note n below the table.

Regenerate with `python tools/dev/gen_model_zoo.py` after adding or changing an architecture
(`tests/docs/test_model_zoo_doc.py` fails while this page is stale). Every architecture here is also built,
trained for a step, checked against torchreid's forward contract and exported to ONNX by
`tests/modeling/test_model_zoo.py`."""


def _entries() -> list:
    from fastreid.modeling.backbones import model_zoo

    return model_zoo()


Notes = Dict[Tuple[str, str], int]


def note_numbers(entries) -> Notes:
    """{(model name, published key): n} numbering the entries' notes on published figures in page order."""
    keys = [(e.name, key) for e in entries for _, key in PUBLISHED_COLUMNS if key in e.published_notes]
    return {k: i for i, k in enumerate(keys, start=1)}


def static_cells(entry, notes: Optional[Notes] = None) -> List[str]:
    """The cells of ``entry``'s row that need no model: every column except the measured ones (left blank);
    a published figure with a note carries its number from ``notes`` (:func:`note_numbers`)."""
    notes = note_numbers([entry]) if notes is None else notes
    height, width = entry.input_size
    cells = [f"`{entry.name}`", f"`{entry.option('MODEL.BACKBONE.NAME')}`", f"{height}×{width}", "", "", "", ""]
    for column, key in PUBLISHED_COLUMNS:
        value = entry.published.get(key)
        if value is not None:
            number = notes.get((entry.name, key))
            cells[column] = f"{value:g}" + (f" [{number}]" if number else "")
    return cells


def measure(entry) -> Tuple[int, int]:
    """(parameters, MACs) of ``entry``'s eval-mode model at its ``input_size``, without the classifier."""
    import torch

    from fastreid.modeling.complexity import count_params_and_flops
    from fastreid.torchreid.models import build_model

    torch.manual_seed(0)
    model = build_model(entry.name, 0, pretrained=False).eval()
    with warnings.catch_warnings():
        # fvcore traces the model; shape-dependent branches warn, and the input size is fixed here anyway.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        params, macs = count_params_and_flops(model, entry.input_size)
    logger.info("%s: %.2f M parameters, %.3f GMACs", entry.name, params / 1e6, macs / 1e9)
    return params, macs


def row_cells(entry, params: int, macs: int, notes: Optional[Notes] = None) -> List[str]:
    cells = static_cells(entry, notes)
    cells[MEASURED_COLUMNS[0]] = f"{params / 1e6:.2f}"
    cells[MEASURED_COLUMNS[1]] = f"{macs / 1e9:.3f}"
    return cells


def _line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _builder_notes(entries) -> List[str]:
    """One line per backbone builder: the first sentence of its docstring and the names it serves."""
    from fastreid.modeling import BACKBONE_REGISTRY

    names: Dict[str, List[str]] = {}
    for entry in entries:
        names.setdefault(entry.option("MODEL.BACKBONE.NAME"), []).append(entry.name)
    lines = []
    for builder, served in names.items():
        doc = (BACKBONE_REGISTRY.get(builder).__doc__ or "").strip()
        # reST to Markdown: ``code`` and :func:`name` become `code` and `name`.
        summary = re.sub(r":\w+:`", "`", " ".join(doc.split("\n\n")[0].split()).replace("``", "`"))
        served_text = ", ".join(f"`{n}`" for n in served)
        lines.append(f"- `{builder}`: {summary} Serves {served_text}." if summary else
                     f"- `{builder}`: serves {served_text}.")
    return lines


def render(measure_fn: Callable = measure, entries: Optional[list] = None) -> str:
    """The Markdown page; ``measure_fn(entry) -> (params, MACs)`` (default: build and count with fvcore)."""
    entries = _entries() if entries is None else entries
    notes = note_numbers(entries)
    lines = [
        "<!-- GENERATED by tools/dev/gen_model_zoo.py from the model zoo: do not edit. -->",
        "# Model zoo: sizes and costs",
        "",
        INTRO,
        "",
        _line(HEADERS),
        _line(["---"] * 2 + ["---:"] * (len(HEADERS) - 2)),
    ]
    lines += [_line(row_cells(entry, *measure_fn(entry), notes)) for entry in entries]
    if notes:
        by_name = {entry.name: entry for entry in entries}
        header = {key: HEADERS[column] for column, key in PUBLISHED_COLUMNS}
        lines += ["", "Notes on published figures:", ""]
        lines += [f"{number}. `{name}`, {header[key]}: {by_name[name].published_notes[key]}"
                  for (name, key), number in notes.items()]
    lines += ["", "## Backbone builders", "",
              "The `MODEL.BACKBONE.NAME` of each row, with what it builds (its docstring) and the names it serves:",
              ""]
    lines += _builder_notes(entries)
    return "\n".join(lines) + "\n"


def table_rows(text: str) -> Dict[str, List[str]]:
    """The table of a rendered page: {model cell: the row's cells}."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1, writing nothing, when the page is stale")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="the Markdown file to write or check")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logger.setLevel(logging.INFO)
    page = render()
    if args.output.is_file() and args.output.read_text() == page:
        logger.info("%s is up to date", args.output)
        return 0
    if args.check:
        logger.error("%s is stale: run python tools/dev/gen_model_zoo.py", args.output)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(page)
    logger.info("wrote %s", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
