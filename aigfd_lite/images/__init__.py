"""One safe image reader for every path of the package, and the one resampling every lite image goes through."""
from .reader import IMAGE_SUFFIXES, UNSUPPORTED_SUFFIXES, UnreadableImage, WHITE, load_rgb, read_image

__all__ = ["IMAGE_SUFFIXES", "UNSUPPORTED_SUFFIXES", "UnreadableImage", "WHITE", "load_rgb", "read_image"]
