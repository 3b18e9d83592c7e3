"""One safe image reader for every path of the package, and the one resampling every lite image goes through."""
from .reader import IMAGE_SUFFIXES, UNSUPPORTED_SUFFIXES, UnreadableImage, WHITE, load_rgb, read_image
from .resize import as_tested, jpeg_roundtrip, recompress, resample, through

__all__ = ["IMAGE_SUFFIXES", "UNSUPPORTED_SUFFIXES", "UnreadableImage", "WHITE", "as_tested", "load_rgb", "read_image",
           "jpeg_roundtrip", "recompress", "resample", "through"]
