"""aigfd_lite: the tested helper package behind the tutorial book on detecting AI-generated faces as anomalies.

Modules are named after the paper's concepts; each docstring names the chapter that teaches it.
"""
from .inputs import resolve
from .profiles import PROFILES, Profile
from .specs import ProfileError, parse_bool, parse_mapping

__version__ = "0.1.0"
__all__ = ["PROFILES", "Profile", "ProfileError", "parse_bool", "parse_mapping", "resolve", "__version__"]
