import numpy as np
import pytest
import torch

from fastreid.export import FeatureExtractor, compare_features, random_images


def test_compare_features_against_a_loop():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    cosines = [float(x @ y / np.sqrt((x @ x) * (y @ y))) for x, y in zip(a, b)]
    agreement = compare_features(a, b)
    assert agreement.min_cosine == pytest.approx(min(cosines))
    assert agreement.max_abs_diff == pytest.approx(max(abs(x - y) for x, y in zip(a.ravel(), b.ravel())))
    assert compare_features(a, 2 * a) == (pytest.approx(np.abs(a).max()), pytest.approx(1.0))
    with pytest.raises(ValueError, match="shapes differ"):
        compare_features(a, b[:3])


def test_random_images_are_reproducible_and_on_the_pixel_scale():
    x = random_images(2, (8, 4), seed=5)
    assert x.shape == (2, 3, 8, 4) and 0 <= x.min() and x.max() <= 255 and x.max() > 1
    assert torch.equal(x, random_images(2, (8, 4), seed=5))


def test_feature_extractor_stays_in_eval_mode_and_rejects_non_feature_outputs():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.BatchNorm1d(3 * 2 * 2))
    extractor = FeatureExtractor(model).train()
    assert not model.training
    assert extractor(torch.full((2, 3, 2, 2), 7, dtype=torch.uint8)).shape == (2, 12)
    with pytest.raises(TypeError, match="N×D features"):
        FeatureExtractor(torch.nn.Identity())(torch.zeros(1, 3, 2, 2))
