"""Reading the FDF id map safely: a pickle from a file-sharing site is never unpickled blindly (chapter 11).

``id_vs_fdfName.pkl`` maps each FDF image name to its Flickr photo id. A pickle runs code through the callables it
names, so :func:`load_id_map` reads it with :class:`RestrictedUnpickler`, which builds only plain containers,
strings and numbers, and :func:`convert_id_map` writes a JSON copy that is preferred when present. Importable from
:mod:`aigfd_lite.fdf` as before.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any, Optional, Union

from ..storage import atomic_write

PathLike = Union[str, Path]


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asks to build something other than plain containers, strings and numbers."""


#: The only globals a pickle of a plain ``{str: str}`` / ``{str: int}`` mapping (or lists of them) may reference.
#: Plain dicts, lists, strings and ints need none at all (they have opcodes); these cover the odd set or tuple.
SAFE_GLOBALS = frozenset({("builtins", name) for name in
                          ("dict", "list", "tuple", "set", "frozenset", "str", "int", "float", "bool")}
                         | {("collections", "OrderedDict")})


class RestrictedUnpickler(pickle.Unpickler):
    """A :class:`pickle.Unpickler` whose ``find_class`` refuses everything outside :data:`SAFE_GLOBALS`.

    A pickle runs code through the callables it names (``os.system``, ``builtins.eval``, ...): refusing every global
    except a few harmless constructors makes loading an untrusted pickle safe for plain data.
    """

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in SAFE_GLOBALS:
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"refusing to unpickle {module}.{name}: this loader builds only plain dicts, lists, strings and numbers "
            f"(an id map needs nothing else). If the file is trusted, convert it elsewhere to JSON "
            f"(name -> photo id) and place it beside the pickle as id_vs_fdfName.json.")

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refusing a pickle with persistent ids")


def safe_unpickle(data: bytes) -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler` (raises :class:`UnsafePickleError` on any other global)."""
    return RestrictedUnpickler(io.BytesIO(data)).load()


def _as_id_map(obj: Any, source: PathLike) -> dict[str, str]:
    if not isinstance(obj, dict):
        raise ValueError(f"{source}: expected a mapping FDF name -> photo id, got {type(obj).__name__}")
    out: dict[str, str] = {}
    for key, value in obj.items():
        if not isinstance(key, (str, int)) or not isinstance(value, (str, int)) or isinstance(value, bool):
            raise ValueError(f"{source}: entry {key!r}: {value!r} is not a name -> photo id pair of strings/ints")
        out[str(key)] = str(value)
    return out


def convert_id_map(pkl_path: PathLike, json_path: Optional[PathLike] = None) -> Path:
    """Safely read the id-map pickle and write it as JSON (default: beside it, ``.json``); returns the JSON path.

    The write is atomic (temporary file, then rename), so a half-written JSON is never picked up.
    """
    pkl_path = Path(pkl_path)
    json_path = Path(json_path) if json_path is not None else pkl_path.with_suffix(".json")
    mapping = _as_id_map(safe_unpickle(pkl_path.read_bytes()), pkl_path)

    def write(tmp: str) -> None:
        with open(tmp, "w") as fh:
            json.dump(mapping, fh)

    atomic_write(json_path, write, prefix=json_path.name, mode=None)
    return json_path


def load_id_map(pkl_path: PathLike) -> dict[str, str]:
    """FDF image name -> Flickr photo id: from the JSON copy beside ``pkl_path`` if present, else the pickle, read
    with :class:`RestrictedUnpickler`. Keys and values come back as strings."""
    pkl_path = Path(pkl_path)
    json_path = pkl_path.with_suffix(".json")
    if json_path.is_file():
        with open(json_path) as fh:
            return _as_id_map(json.load(fh), json_path)
    if not pkl_path.is_file():
        raise FileNotFoundError(f"id map not found: neither {json_path} nor {pkl_path}")
    return _as_id_map(safe_unpickle(pkl_path.read_bytes()), pkl_path)
