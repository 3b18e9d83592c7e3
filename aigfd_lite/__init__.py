"""aigfd_lite: the tested helper package behind the tutorial book on detecting AI-generated faces as anomalies.

One sub-package per part of the book; each floor imports only from the floors below it (no cycles, no private
name taken across sub-packages: ``tests/test_import_graph.py``). Top to bottom:

* ``cli``, :mod:`.plots` (figures); :mod:`.inputs` (what a chapter reads: :func:`resolve` with ``needs``);
  :mod:`.long_runs` (the guard before a long run) and :mod:`.gpu_check`;
* :mod:`.data` (chapter 11: the data check, the miniature), :mod:`.score` (chapter 9: bundle, ``aigfd score``);
* :mod:`.blades` (chapter 7), :mod:`.evaluation` (chapters 5, 6 and 8), :mod:`.train` (chapter 4);
* :mod:`.pretext` (chapters 3-4), :mod:`.fdf` (the paper's training data), :mod:`.models` (network, weights,
  features), :mod:`.faces`, :mod:`.camera` and :mod:`.manipulate` (chapter 3);
* :mod:`.losses` (chapter 2), :mod:`.exif` (chapter 1), :mod:`.detector` (chapter 5's GMM);
* :mod:`.fetch` and :mod:`.sources` (the lite data), :mod:`.results` and :mod:`.storage` (where numbers and
  artifacts go),
  :mod:`.profiles` and :mod:`.specs` (the profile table), :mod:`.images` and :mod:`.runtime`.

Each docstring names the chapter that teaches it.
"""
from .inputs import resolve
from .profiles import PROFILES, Profile
from .specs import ProfileError, parse_bool, parse_mapping

__version__ = "0.1.0"
__all__ = ["PROFILES", "Profile", "ProfileError", "parse_bool", "parse_mapping", "resolve", "__version__"]
