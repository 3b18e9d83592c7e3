"""Evaluation (chapters 5, 6 and 8): the protocol, test sets, generators, metrics, baselines, robustness, the papers' numbers."""
from .baselines import MobileNetV2Features, semantic_features_model, train_binary_baseline
from .generators import sample_dcgan
from .metrics import auc_difference, detector_table, metrics_table, operating_intervals
from .protocol import featurize, load_protocol, pretext_evidence
from .recipe import chapter_detector, detector_faces, lite_real_faces, proxy_faces, view_of
from .reported import load_reported, reported_table
from .tables import side_by_side, style
from .testsets import (GENERATOR_FOLDERS, IMAGE_SUFFIXES, PaperLayout, as_tested, lite_test_set, paper_test_sets,
                       resample)

__all__ = ["GENERATOR_FOLDERS", "IMAGE_SUFFIXES", "MobileNetV2Features", "PaperLayout", "as_tested",
           "auc_difference", "chapter_detector", "detector_faces", "detector_table", "featurize", "lite_test_set",
           "load_protocol", "load_reported", "metrics_table", "paper_test_sets", "pretext_evidence",
           "reported_table", "resample", "sample_dcgan", "semantic_features_model", "side_by_side", "style",
           "train_binary_baseline", "view_of", "lite_real_faces", "proxy_faces", "operating_intervals"]
