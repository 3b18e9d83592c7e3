"""The paper's data (chapter 11): ``python -m aigfd_lite.data check DATA_ROOT`` and a miniature of the official layout."""
from .check import check_layout
from .miniature import lite_miniature, write_synthetic_tree

__all__ = ["check_layout", "lite_miniature", "write_synthetic_tree"]
