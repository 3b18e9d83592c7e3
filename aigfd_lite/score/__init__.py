"""Scoring your own photos (chapter 9): the detector bundle and ``aigfd score``."""
from .bundle import build_bundle, load_bundle
from .bundle_format import BundleError
from .photos import ROW_KEYS, ScoreStats, score_files

__all__ = ["BundleError", "ROW_KEYS", "ScoreStats", "build_bundle", "load_bundle", "score_files"]
