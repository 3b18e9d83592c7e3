"""The pretext task (chapters 3-4): training items, their augmentation, and its held-out evaluation."""
from .augment import augmented
from .batches import PretextDataset, decode_rate_per_core, tags_of, to_tensor
from .build import build_pretext_dataset
from .evaluation import bootstrap_intervals, evaluate_pretext, saturation_diagnostic
from .fdf_items import FDFPretextDataset

__all__ = ["FDFPretextDataset", "PretextDataset", "augmented", "bootstrap_intervals", "build_pretext_dataset",
           "decode_rate_per_core", "evaluate_pretext", "saturation_diagnostic", "tags_of", "to_tensor"]
