"""The full profile's training data (chapters 3, 4 and 11): the official FDF layout, its index, its landmark pass."""
from .id_map import load_id_map
from .landmarks import FaceLandmarks, VERSION, WORK_SIZE, landmarks_path, load_or_compute
from .layout import FDFLayout, find_training_root, read_rgb
from .scan import LayoutPaths, N_MANIPULATED, listdir, read_metainfo

__all__ = ["FDFLayout", "FaceLandmarks", "LayoutPaths", "N_MANIPULATED", "VERSION", "WORK_SIZE",
           "find_training_root", "landmarks_path", "listdir", "load_id_map", "load_or_compute", "read_metainfo",
           "read_rgb"]
