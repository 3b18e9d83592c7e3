"""aigfd_lite.evaluation.proxy: BLADES' proxy chooses a detector with real faces and manipulated copies only."""
import numpy as np
import pytest

from aigfd_lite.manipulate import MANIPULATIONS
from aigfd_lite.evaluation.proxy import TIE, choose_by_proxy, manipulated_versions, n_parameters, proxy_auc


def _faces(n=120, d=20, seed=0):
    rng = np.random.default_rng(seed)
    scales = np.r_[np.full(4, 10.0), np.full(d - 4, 0.3)]  # four loud directions, quiet ones below
    return rng.normal(size=(n, d)) * scales


def test_proxy_auc_sees_a_shift_and_not_a_copy():
    real = _faces()
    shifted = real + np.r_[np.zeros(4), np.full(16, 1.0)]  # manipulated: moved along the quiet directions
    assert proxy_auc(real, shifted, n_components=1) > 0.95
    noise = real + np.random.default_rng(1).normal(size=real.shape) * 1e-3
    assert abs(proxy_auc(real, noise, n_components=1) - 0.5) < 0.1


def test_proxy_auc_pairs_rows():
    with pytest.raises(ValueError, match="pair row by row"):
        proxy_auc(_faces(), _faces()[:-1], n_components=1)


def test_choose_by_proxy_keeps_the_dimensions_that_see_the_manipulation():
    """A 4-d PCA keeps only the loud directions and misses a shift along the quiet ones; 16-d sees it."""
    real = _faces()
    shifted = real + np.r_[np.zeros(4), np.full(16, 1.0)]
    cands = [{"n_components": 1, "pca_components": 4}, {"n_components": 1, "pca_components": 16}]
    best, table = choose_by_proxy(real, shifted, cands)
    assert best == cands[1]
    assert table.loc[table["chosen"], "pca_components"].item() == 16
    assert table["proxy AUC"].is_monotonic_decreasing  # best first


def test_ties_go_to_the_smaller_mixture():
    real = _faces()
    copy = real.copy()  # every candidate separates nothing: all tied at 0.5
    cands = [{"n_components": 2, "pca_components": 8}, {"n_components": 1, "pca_components": 8},
             {"n_components": 1, "pca_components": 16}]
    best, table = choose_by_proxy(real, copy, cands)
    assert table["proxy AUC"].max() - table["proxy AUC"].min() <= TIE
    assert best == {"n_components": 1, "pca_components": 8}
    assert n_parameters(1, 8) < n_parameters(2, 8) < n_parameters(1, 16) + n_parameters(2, 8)


def test_manipulated_versions_are_seeded_and_changed():
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 255, size=(3, 64, 64, 3), dtype=np.uint8)
    a, kinds = manipulated_versions(faces, crop_scale=1.3, seed=5)
    b, _ = manipulated_versions(faces, crop_scale=1.3, seed=5)
    assert a.shape == faces.shape and a.dtype == np.uint8 and np.array_equal(a, b)
    assert set(kinds) <= set(MANIPULATIONS) and len(kinds) == 3
    assert not np.array_equal(a, faces)
    with pytest.raises(ValueError, match="uint8"):
        manipulated_versions(faces.astype(float), crop_scale=1.3)


def test_the_ledger_of_detector_test_looks_says_what_each_look_saw_and_what_followed():
    """Chapter 6 prints every look at the lite detector's generated test faces from this file."""
    import json
    from importlib.resources import files

    looks = json.loads(files("aigfd_lite").joinpath("data/detector_test_looks.json").read_text())["looks"]
    assert len(looks) >= 4
    for look in looks:
        assert look["when"] and look["protocol"] and look["what_was_looked_at"] and look["what_followed"]
        assert look["measured"], look["when"]
