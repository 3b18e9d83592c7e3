"""The camera simulator (chapter 3): ordinal EXIF tags for faces that have none (settings), the simulator and its
lens."""
from .settings import TAGS, sample_tags
from .simulator import SIMULATOR_VERSION, jpeg

__all__ = ["SIMULATOR_VERSION", "TAGS", "jpeg", "sample_tags"]
