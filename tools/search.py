#!/usr/bin/env python
"""Search a gallery of person (or vehicle) crops with a trained model.

Index a gallery (folders are searched recursively for images), then query it::

    python tools/search.py index --config-file CFG --weights model.pth --gallery crops/ --output search_out \
        [--index flat|ivf|ivfpq|hnsw] [KEY VALUE ...]
    python tools/search.py query --index-dir search_out --query queries/ [--topk 10] [--embed-images]
    # a gallery too large to hold: extract it into a sharded store, then index the store in chunks
    python tools/search.py index --store gallery_store --output search_out --index hnsw

``index`` writes ``index.faiss``, ``paths.json`` and ``meta.json`` (which records the config file, weights and
overrides, so ``query`` extracts features with the same model unless ``--config-file``/``--weights`` are
given again, and the precision the gallery was embedded in). ``query`` writes ``results.json``
(``[{"query": path, "results": [{"path", "score"}]}]``) and the static page ``results.html`` into ``--output``
(default: the index folder). The page links the images by relative paths, so keep it next to the images or
pass ``--embed-images`` for one self-contained file.

Features are extracted under MODEL.PRECISION ("auto": bfloat16 autocast on CPUs where a quick check finds it
faster, see fastreid.utils.precision); add ``MODEL.PRECISION fp32`` to force float32.

Scores: cosine similarity (higher is closer) for TEST.METRIC cosine, squared Euclidean distance (lower is
closer) for euclidean.
"""
import argparse
import json
import logging
import os
import sys
from typing import List, Optional, Sequence

from fastreid.config import add_config_arguments, config_overrides
from fastreid.evaluation.faiss_index import DEFAULT_EF_SEARCH, DEFAULT_NPROBE
from fastreid.evaluation.feature_store import FeatureStore
from fastreid.predictor import FeatureExtractor, load_inference_config
from fastreid.search import INDEX_KINDS, GalleryIndex, list_images, write_search_report
from fastreid.utils.logger import setup_logger
from fastreid.utils.precision import precision_key, precision_name

logger = logging.getLogger("fastreid.search")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def model_args(p: argparse.ArgumentParser, required: bool) -> None:
        add_config_arguments(p, required=required)
        p.add_argument("--weights", default="", metavar="FILE", help="trained weights (default MODEL.WEIGHTS)")
        p.add_argument("--batch-size", type=int, default=0, help="images per forward (default TEST.IMS_PER_BATCH)")

    index = sub.add_parser("index", help="extract gallery features and save a faiss index")
    source = index.add_mutually_exclusive_group(required=True)
    source.add_argument("--gallery", nargs="+", help="gallery image folders and/or files")
    source.add_argument("--store", metavar="DIR",
                        help="a feature store of tools/extract_features.py: index its features in chunks, without "
                             "loading them whole or running the model (its config and weights are recorded)")
    index.add_argument("--output", required=True, help="folder for index.faiss, paths.json, meta.json")
    index.add_argument("--index", choices=INDEX_KINDS, default="flat",
                       help="flat (exact), hnsw (the approximate index to start with for large galleries), ivf "
                            "(IVF-Flat) or ivfpq (IVF-PQ, compressed); see docs/benchmarks.md")
    index.add_argument("--nlist", type=int, default=0, help="IVF lists (default about 4*sqrt(N))")
    index.add_argument("--nprobe", type=int, default=DEFAULT_NPROBE, help="IVF lists visited per query")
    index.add_argument("--pq-m", type=int, default=64, help="IVF-PQ sub-vectors per code (must divide the dim)")
    index.add_argument("--pq-nbits", type=int, default=8, help="IVF-PQ bits per sub-vector code")
    index.add_argument("--refine", type=int, default=0, metavar="FACTOR",
                       help="IVF-PQ: keep full vectors and re-rank FACTOR*topk PQ candidates exactly (0: off)")
    index.add_argument("--train-size", type=int, default=0,
                       help="IVF training sample (default max(100k, 39*nlist), at most N)")
    index.add_argument("--hnsw-m", type=int, default=32, help="HNSW links per node")
    index.add_argument("--ef-search", type=int, default=DEFAULT_EF_SEARCH, help="HNSW candidates per query")
    model_args(index, required=False)  # --config-file is required with --gallery (checked in run_index)

    query = sub.add_parser("query", help="search an index with query images and write the HTML report")
    query.add_argument("--index-dir", required=True, help="folder written by the index command")
    query.add_argument("--query", nargs="+", required=True, help="query image folders and/or files")
    query.add_argument("--topk", type=int, default=10, help="results per query")
    query.add_argument("--output", default="", help="folder for results.json / results.html (default index dir)")
    query.add_argument("--embed-images", action="store_true", help="inline images in the page as base64")
    query.add_argument("--nprobe", type=int, default=None, help="IVF lists visited per query (default: the index's)")
    query.add_argument("--ef-search", type=int, default=None,
                       help="HNSW candidates per query (default: the index's)")
    model_args(query, required=False)
    return parser


def _extractor(cfg, batch_size: int) -> FeatureExtractor:
    kwargs = {"normalize": cfg.TEST.METRIC == "cosine"}
    if batch_size:
        kwargs["batch_size"] = batch_size
    return FeatureExtractor.from_config(cfg, **kwargs)


def _index_options(args: argparse.Namespace) -> dict:
    return dict(kind=args.index, nlist=args.nlist or None, nprobe=args.nprobe, hnsw_m=args.hnsw_m,
                ef_search=args.ef_search, pq_m=args.pq_m, pq_nbits=args.pq_nbits, refine_factor=args.refine,
                train_size=args.train_size or None)


def run_store_index(args: argparse.Namespace) -> GalleryIndex:
    """Indexes a finished feature store; the model that made it is recorded for ``query``."""
    store = FeatureStore.open(args.store)
    store_meta = store.manifest.get("meta", {})
    if "config" not in store_meta:
        raise ValueError(f"{args.store}: the manifest does not record the model's config; index it with "
                         "--gallery and --config-file instead, or re-extract it with tools/extract_features.py")
    os.makedirs(args.output, exist_ok=True)
    config_file = os.path.join(args.output, "config.yaml")
    with open(config_file, "w") as f:  # the config the store's features were extracted with
        f.write(store_meta["config"])
    # queries are embedded in the precision of the gallery
    opts = ["MODEL.PRECISION", precision_key(store_meta["precision"])] if store_meta.get("precision") else []
    model_meta = {"config_file": os.path.abspath(config_file), "weights": store_meta.get("weights", ""),
                  "opts": opts, "flip": store_meta.get("flip", False), "precision": store_meta.get("precision"),
                  "store": os.path.abspath(args.store)}
    logger.info("Indexing the %d features of the store %s", len(store), args.store)
    index = GalleryIndex.build_from_store(store, extra_meta=model_meta, **_index_options(args))
    index.save(args.output)
    logger.info("Wrote the %s index of %d images to %s", args.index, len(index), args.output)
    return index


def run_index(args: argparse.Namespace) -> GalleryIndex:
    if args.store:
        return run_store_index(args)
    if not args.config_file:
        raise ValueError("index --gallery needs the model: pass --config-file (and --weights)")
    paths = list_images(args.gallery)
    cfg = load_inference_config(args.config_file, args.weights, config_overrides(args))
    extractor = _extractor(cfg, args.batch_size)
    logger.info("Extracting features of %d gallery images", len(paths))
    weights = os.path.abspath(cfg.MODEL.WEIGHTS) if os.path.isfile(cfg.MODEL.WEIGHTS) else cfg.MODEL.WEIGHTS
    model_meta = {"config_file": os.path.abspath(args.config_file), "weights": weights,
                  "opts": config_overrides(args), "flip": extractor.flip,
                  "precision": precision_name(extractor.precision)}
    index = GalleryIndex.build(extractor(paths), paths, metric=cfg.TEST.METRIC, extra_meta=model_meta,
                               **_index_options(args))
    index.save(args.output)
    logger.info("Wrote the %s index of %d images to %s", args.index, len(index), args.output)
    return index


def run_query(args: argparse.Namespace) -> List[dict]:
    index = GalleryIndex.load(args.index_dir)
    index.set_search_params(nprobe=args.nprobe, ef_search=args.ef_search)
    meta = index.meta
    if not args.config_file and "config_file" not in meta:
        raise ValueError(f"{os.path.join(args.index_dir, 'meta.json')} does not say which model built the index "
                         "(no config_file): pass --config-file and --weights of that model.")
    cfg = load_inference_config(args.config_file or meta["config_file"], args.weights or meta.get("weights", ""),
                                list(meta.get("opts", [])) + config_overrides(args))
    if cfg.TEST.METRIC != meta["metric"]:
        raise ValueError(f"The index was built for TEST.METRIC {meta['metric']}, the query config has "
                         f"{cfg.TEST.METRIC}")
    extractor = _extractor(cfg, args.batch_size)
    queries = list_images(args.query)
    ranked = index.search_paths(extractor(queries), args.topk)
    output = args.output or args.index_dir
    os.makedirs(output, exist_ok=True)
    records = [{"query": q, "results": [{"path": p, "score": s} for p, s in r]} for q, r in zip(queries, ranked)]
    with open(os.path.join(output, "results.json"), "w") as f:
        json.dump(records, f, indent=1)
    score_name = "cosine similarity (higher is closer)" if index.higher_is_closer else \
        "squared Euclidean distance (lower is closer)"
    page = write_search_report(os.path.join(output, "results.html"), queries, ranked, score_name=score_name,
                               embed=args.embed_images)
    logger.info("Wrote results of %d queries to %s and %s", len(queries), os.path.join(output, "results.json"),
                page)
    return records


def main(argv: Optional[Sequence[str]] = None):
    args = build_parser().parse_args(argv)
    setup_logger(name="fastreid")
    return run_index(args) if args.command == "index" else run_query(args)


if __name__ == "__main__":
    main(sys.argv[1:])
