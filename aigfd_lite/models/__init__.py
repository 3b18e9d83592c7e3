"""The network (chapter 4): backbone and heads, the registry of downloadable weights, features of image files."""
from .feature_cache import cached_features
from .features import extract_features
from .image_files import ImageFiles, read_resized
from .network import BACKBONES, CLIP_MEAN, CLIP_STD, ExifManipNet, TAGS, TASKS, check_tasks, make_backbone, prepare_batch
from .initialisation import build_model
from .weights import REGISTRY, weights_dir

__all__ = ["BACKBONES", "CLIP_MEAN", "CLIP_STD", "ExifManipNet", "ImageFiles", "REGISTRY", "TAGS", "TASKS",
           "build_model", "cached_features", "check_tasks", "extract_features", "make_backbone",
           "prepare_batch", "read_resized", "weights_dir"]
