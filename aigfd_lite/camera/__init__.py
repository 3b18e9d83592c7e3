"""The camera simulator (chapter 3): ordinal EXIF tags for faces that have none, and its lens."""
from .simulator import SIMULATOR_VERSION, TAGS, jpeg, sample_tags

__all__ = ["SIMULATOR_VERSION", "TAGS", "jpeg", "sample_tags"]
