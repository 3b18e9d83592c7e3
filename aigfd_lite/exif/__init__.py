"""EXIF tags as free labels (chapter 1): the tag set, the file reader, Flickr's strings, the pairwise labels."""
from .flickr import FLICKR_KEYS, parse_flickr_exif, parse_flickr_exif_published, published_exposure
from .pairs import pair_label_matrix, pair_labels
from .tags import CATEGORICAL_TAGS, CATEGORY_NAMES, NotAnImageError, ORDINAL_TAGS, read_exif

__all__ = ["CATEGORICAL_TAGS", "CATEGORY_NAMES", "FLICKR_KEYS", "NotAnImageError", "ORDINAL_TAGS",
           "pair_label_matrix", "pair_labels", "parse_flickr_exif", "parse_flickr_exif_published",
           "published_exposure", "read_exif"]
