"""The anomaly detector (chapter 5): a Gaussian mixture on real faces' features, and its real-only checks."""
from .gmm import DETECTOR_FORMAT, GMMDetector, conformal_threshold
from .validation import choose_n_components, held_out_false_alarm, rate_interval

__all__ = ["DETECTOR_FORMAT", "GMMDetector", "choose_n_components", "conformal_threshold", "held_out_false_alarm",
           "rate_interval"]
