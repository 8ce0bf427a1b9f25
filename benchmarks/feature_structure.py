"""How re-id features are structured, for a trained model and for the benchmarks' feature generators (not a test).

Fits the generator of ``_common.spectral_features`` (used by ``bench_index.py``) to a trained model: the
model's features of the query and gallery images of a Market-1501-layout folder are L2-normalised and split into
identity means and within-identity residuals; the script prints, for the model and for the generators at the
same number of identities and images:

* the principal components that hold 50 / 90 / 99 % of the variance (of all features, of the identity means and
  of the residuals);
* the share of the variance between identities, and the share of the residual explained by camera means;
* the mean cosine of same-identity pairs and the mean and spread of different-identity pairs;
* the power-law exponent of each eigenvalue spectrum (log-log least squares against the rank), over the first
  ``--between-fit`` components of the identity means (their rank is below the number of identities) and the
  first ``--within-fit`` of the residuals.

Usage::

    python tools/train_net.py --config-file configs/Synthetic/bagtricks_R18.yml OUTPUT_DIR /tmp/demo SEED 42
    python benchmarks/feature_structure.py --config-file /tmp/demo/config.yaml \
        --weights /tmp/demo/model_final.pth --dataset datasets/SyntheticPerson
"""
import argparse
import glob
import os
from typing import Dict

import numpy as np
import torch

from _common import DEFAULT_NOISE, clustered_features, spectral_features, spectral_world

_IMAGES = ("*.jpg", "*.png")


def _components(eigenvalues: np.ndarray, shares=(0.5, 0.9, 0.99)) -> list:
    cumulative = np.cumsum(eigenvalues) / eigenvalues.sum()
    return [int(np.searchsorted(cumulative, s) + 1) for s in shares]


def _spectrum(centred: np.ndarray) -> np.ndarray:
    return np.clip(np.linalg.eigvalsh(centred.T @ centred / len(centred))[::-1], 0, None)


def _exponent(eigenvalues: np.ndarray, count: int) -> float:
    values = eigenvalues[:count]
    values = values[values > 0]
    ranks = np.arange(1, len(values) + 1)
    return float(-np.polyfit(np.log(ranks), np.log(values), 1)[0])


def structure(feats: np.ndarray, pids: np.ndarray, camids: np.ndarray, between_fit: int,
              within_fit: int) -> Dict[str, object]:
    """The statistics listed in the module docstring, of (N, D) features with identity and camera labels."""
    feats = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    centred = feats - feats.mean(0)
    ids, id_index = np.unique(pids, return_inverse=True)
    id_means = np.stack([centred[id_index == i].mean(0) for i in range(len(ids))])
    residual = centred - id_means[id_index]
    cams, cam_index = np.unique(camids, return_inverse=True)
    cam_means = np.stack([residual[cam_index == c].mean(0) for c in range(len(cams))])
    total = float((centred ** 2).sum())
    between = float((id_means[id_index] ** 2).sum())
    camera = float((cam_means[cam_index] ** 2).sum())
    sims = feats @ feats.T
    same = pids[:, None] == pids[None]
    other = ~same
    np.fill_diagonal(same, False)
    spectrum_between, spectrum_within = _spectrum(id_means - id_means.mean(0)), _spectrum(residual)
    return {"images": len(feats), "ids": len(ids), "dim": feats.shape[1],
            "components_all": _components(_spectrum(centred)), "components_between": _components(spectrum_between),
            "components_within": _components(spectrum_within), "between_share": between / total,
            "camera_share_of_residual": camera / float((residual ** 2).sum()),
            "cos_same": float(sims[same].mean()), "cos_other": float(sims[other].mean()),
            "cos_other_std": float(sims[other].std()),
            "exponent_between": _exponent(spectrum_between, between_fit),
            "exponent_within": _exponent(spectrum_within, within_fit)}


def model_features(config_file: str, weights: str, dataset: str):
    """fp32 features, identities and cameras of ``dataset``'s query and bounding_box_test images."""
    from fastreid.data.datasets.custom import labels_from_name
    from fastreid.predictor import FeatureExtractor

    paths = sorted(p for split in ("query", "bounding_box_test") for pattern in _IMAGES
                   for p in glob.glob(os.path.join(dataset, split, pattern)))
    if not paths:
        raise FileNotFoundError(f"No images in {dataset}/query or {dataset}/bounding_box_test")
    labels = [labels_from_name(os.path.basename(p)) for p in paths]
    keep = [i for i, label in enumerate(labels) if label is not None and label[0] >= 0]  # no distractors
    extractor = FeatureExtractor.from_config_file(config_file, weights, ["MODEL.PRECISION", "fp32"])
    feats = extractor([paths[i] for i in keep]).float().numpy()
    return feats, np.array([labels[i][0] for i in keep]), np.array([labels[i][1] for i in keep])


def generated(kind: str, num_ids: int, num_images: int, num_cams: int, dim: int, noise: float):
    g = torch.Generator().manual_seed(0)
    if kind == "spectral":
        feats, pids, camids = spectral_features(num_images, spectral_world(num_ids, num_cams, dim, g), g, noise)
    else:
        centres, cams = torch.randn(num_ids, dim, generator=g), torch.randn(num_cams, dim, generator=g)
        feats, pids, camids = clustered_features(num_images, centres, cams, g, noise)
    return feats.numpy(), pids, camids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--dataset", required=True, help="a Market-1501-layout folder (query/, bounding_box_test/)")
    parser.add_argument("--between-fit", type=int, default=30, help="identity-mean components in the fit")
    parser.add_argument("--within-fit", type=int, default=400, help="residual components in the fit")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    feats, pids, camids = model_features(args.config_file, args.weights, args.dataset)
    rows = {"trained model": structure(feats, pids, camids, args.between_fit, args.within_fit)}
    shape = (len(np.unique(pids)), len(pids), len(np.unique(camids)), feats.shape[1])
    for kind, noise in DEFAULT_NOISE.items():
        rows[f"{kind} generator"] = structure(*generated(kind, *shape, noise), args.between_fit, args.within_fit)
    keys = list(rows["trained model"])
    print("| statistic | " + " | ".join(rows) + " |")
    print("|---|" + "---|" * len(rows))
    for key in keys:
        cells = [f"{r[key]:.3f}" if isinstance(r[key], float) else str(r[key]) for r in rows.values()]
        print(f"| {key} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
