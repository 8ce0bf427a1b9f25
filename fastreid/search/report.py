"""A static HTML page of search results: one row per query, its ranked gallery images and their scores.

Images are referenced by paths relative to the page (so the page and the images can be moved together), or,
with ``embed=True``, inlined as base64 data URIs (one self-contained file, larger). No server is needed.

A small script runs after the page has loaded and records on ``<body>`` how many images rendered:
``data-images-total``, ``data-images-loaded`` (``complete`` with a non-zero natural width),
``data-images-failed`` and ``data-images-ready`` ("true" when every image rendered); headless-browser tests
read these from the dumped DOM.
"""
import base64
import html
import logging
import mimetypes
import os
import urllib.request
from typing import List, Sequence, Tuple

__all__ = ["write_search_report"]

logger = logging.getLogger(__name__)

_STYLE = """
body { font-family: sans-serif; margin: 16px; }
.row { display: flex; align-items: flex-start; gap: 8px; margin-bottom: 14px; border-bottom: 1px solid #ddd;
       padding-bottom: 8px; }
figure { margin: 0; text-align: center; font-size: 11px; }
figure img { height: 128px; image-rendering: auto; border: 3px solid #bbb; }
figure.query img { border-color: #000; }
figcaption { max-width: 110px; overflow-wrap: anywhere; }
"""

_SCRIPT = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var loaded = images.filter(function (im) { return im.complete && im.naturalWidth > 0; }).length;
  var failed = images.filter(function (im) { return im.complete && im.naturalWidth === 0; }).length;
  var body = document.body;
  body.setAttribute("data-images-total", images.length);
  body.setAttribute("data-images-loaded", loaded);
  body.setAttribute("data-images-failed", failed);
  body.setAttribute("data-images-ready", loaded === images.length ? "true" : "false");
});
"""


def _image_src(path: str, page_dir: str, embed: bool) -> str:
    if embed:
        mime = mimetypes.guess_type(path)[0] or "application/octet-stream"
        with open(path, "rb") as f:
            return f"data:{mime};base64,{base64.b64encode(f.read()).decode('ascii')}"
    rel = os.path.relpath(os.path.abspath(path), page_dir)
    return urllib.request.pathname2url(rel)


def _figure(path: str, caption: str, page_dir: str, embed: bool, css_class: str) -> str:
    src = html.escape(_image_src(path, page_dir, embed), quote=True)
    name = html.escape(os.path.basename(path))
    return (f'<figure class="{css_class}"><img src="{src}" alt="{name}" title="{html.escape(path, quote=True)}">'
            f"<figcaption>{caption}<br>{name}</figcaption></figure>")


def write_search_report(output_file: str, queries: Sequence[str], results: Sequence[Sequence[Tuple[str, float]]],
                        *, score_name: str = "cosine similarity", embed: bool = False,
                        title: str = "fastreid search results") -> str:
    """Writes the results page.

    Args:
        output_file: the HTML file to write (its folder is created if missing).
        queries: Q query image paths.
        results: per query, ``[(gallery image path, score), ...]`` best first.
        score_name: what the score is (shown in the page header).
        embed: inline the images as base64 instead of linking them by relative path.
        title: page title.

    Returns:
        ``output_file``.
    """
    if len(queries) != len(results):
        raise ValueError(f"{len(queries)} queries but {len(results)} result lists")
    page_dir = os.path.dirname(os.path.abspath(output_file))
    os.makedirs(page_dir, exist_ok=True)
    rows: List[str] = []
    for q_index, (query, ranked) in enumerate(zip(queries, results)):
        cells = [_figure(query, f"query {q_index}", page_dir, embed, "query")]
        cells += [_figure(path, f"#{rank} {score:.4f}", page_dir, embed, "result")
                  for rank, (path, score) in enumerate(ranked, start=1)]
        rows.append(f'<div class="row" data-query="{q_index}">{"".join(cells)}</div>')
    page = (
        f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head>\n<body>\n<h1>{html.escape(title)}</h1>\n"
        f"<p>{len(queries)} queries; results ranked by {html.escape(score_name)} (score under each image).</p>\n"
        + "\n".join(rows)
        + f"\n<script>{_SCRIPT}</script>\n</body></html>\n"
    )
    with open(output_file, "w", encoding="utf-8") as f:
        f.write(page)
    logger.info("Wrote the search report of %d queries to %s", len(queries), output_file)
    return output_file
