"""What each profile setting may hold: a type and a range or a set of choices (chapter 0, "Profiles").

:data:`aigfd_lite.profiles.SPECS` gives every :class:`~aigfd_lite.profiles.Profile` field one of the specs below;
:func:`aigfd_lite.profiles.resolve` runs them on the profile's table and on every override, so a wrong value stops
at the config cell with a message that names the setting, the value and what is allowed, not deep in training.

The rules, the same for every setting:

* an integer setting takes an ``int`` (numpy integers too); a float is refused even when whole (``2.0``: write
  ``2``), and so are ``bool`` (``True`` is not 1) and strings (``"3"``);
* a float setting takes an ``int`` or a finite ``float``, never a string: PyYAML reads ``1e-4`` as the string
  ``"1e-4"`` (YAML 1.1 wants ``1.0e-4``), and the message says so;
* a boolean setting takes ``True`` or ``False`` only; a notebook *parameter* given as text (papermill's ``-p`` turns
  only ``True``/``False`` into booleans) goes through :func:`parse_bool`, which knows a few spellings;
* a choice is one of its strings; a path is a string, checked for existence where it must exist.
"""
from __future__ import annotations

import json
import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional as Opt, Sequence, Union


class ProfileError(ValueError):
    """A profile, a setting or a notebook parameter that cannot be used; the message says what is allowed."""


def _show(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class Int:
    """An integer in ``[min, max]`` (``None``: unbounded)."""

    min: Opt[int] = None
    max: Opt[int] = None

    def allowed(self) -> str:
        lo, hi = self.min, self.max
        if lo is not None and hi is not None:
            return f"an integer from {lo} to {hi}"
        return "an integer" + (f" >= {lo}" if lo is not None else "") + (f" <= {hi}" if hi is not None else "")

    def check(self, name: str, value: Any) -> int:
        if not _is_int(value):
            hint = f"; write {int(value)}" if isinstance(value, float) and value.is_integer() else ""
            raise ProfileError(f"setting {name!r} = {_show(value)}: allowed is {self.allowed()}{hint}")
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            raise ProfileError(f"setting {name!r} = {value!r} is out of range: allowed is {self.allowed()}")
        return int(value)


@dataclass(frozen=True)
class Float:
    """A finite number in a range; ``open_min``/``open_max``: the bound itself is excluded."""

    min: Opt[float] = None
    max: Opt[float] = None
    open_min: bool = False
    open_max: bool = False

    def allowed(self) -> str:
        parts = []
        if self.min is not None:
            parts.append(f"{'>' if self.open_min else '>='} {self.min}")
        if self.max is not None:
            parts.append(f"{'<' if self.open_max else '<='} {self.max}")
        return "a number" + (" " + " and ".join(parts) if parts else "")

    def check(self, name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            hint = ""
            if isinstance(value, str):
                try:
                    float(value)
                    hint = ("; it is text: in YAML write 1.0e-4, not 1e-4 (PyYAML reads that as a string), or "
                            "pass a JSON string" if "e" in value.lower() else "; it is text: write it unquoted")
                except ValueError:
                    pass
            raise ProfileError(f"setting {name!r} = {_show(value)}: allowed is {self.allowed()}{hint}")
        value = float(value)
        low = self.min is not None and (value <= self.min if self.open_min else value < self.min)
        high = self.max is not None and (value >= self.max if self.open_max else value > self.max)
        if not math.isfinite(value) or low or high:
            raise ProfileError(f"setting {name!r} = {value!r} is out of range: allowed is {self.allowed()}")
        return value


@dataclass(frozen=True)
class Bool:
    """``True`` or ``False``."""

    def allowed(self) -> str:
        return "True or False"

    def check(self, name: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ProfileError(f"setting {name!r} = {_show(value)}: allowed is {self.allowed()}")
        return value


@dataclass(frozen=True)
class Choice:
    """One of ``choices``. ``owner`` (``"module:NAME"``) names the constant of the module that uses the setting,
    which the tests compare with ``choices`` (importing it here would cost a torch import on every ``resolve``).
    ``or_file``: any other string must name an existing file; ``or_int``: an integer this :class:`Int` allows."""

    choices: tuple = ()
    owner: Opt[str] = None
    or_file: bool = False
    or_int: Opt[Int] = None

    def options(self) -> tuple:
        return self.choices

    def allowed(self) -> str:
        listed = " or ".join(repr(c) for c in self.options())
        return (f"one of {listed}" + (" or the path of an existing checkpoint file" if self.or_file else "")
                + (f" or {self.or_int.allowed()}" if self.or_int else ""))

    def check(self, name: str, value: Any) -> Any:
        options = self.options()
        if self.or_int is not None and _is_int(value):
            if self.or_int.min is not None and value < self.or_int.min:
                raise ProfileError(f"setting {name!r} = {value!r} is out of range: allowed is {self.allowed()}")
            return self.or_int.check(name, value)
        if value in options and (value is None or isinstance(value, str)):
            return value
        if isinstance(value, (str, os.PathLike)) and self.or_file and value not in ("", None):
            path = Path(value).expanduser()
            if path.is_file():
                return str(value)
            raise ProfileError(f"setting {name!r} = {str(value)!r} is neither a choice nor an existing file: "
                               f"allowed is {self.allowed()}")
        raise ProfileError(f"setting {name!r} = {_show(value)}: allowed is {self.allowed()}")


@dataclass(frozen=True)
class Folder:
    """A folder path (``str`` or ``os.PathLike``); ``must_exist``: it must be an existing folder. ``None`` and
    ``""`` mean "none" (where the setting is :class:`OrNone`)."""

    must_exist: bool = False

    def allowed(self) -> str:
        return "the path of an existing folder" if self.must_exist else "a folder path"

    def check(self, name: str, value: Any) -> str:
        if not isinstance(value, (str, os.PathLike)):
            hint = " (papermill: pass it with -r NAME VALUE so it stays text)" if _is_int(value) else ""
            raise ProfileError(f"setting {name!r} = {_show(value)}: allowed is {self.allowed()}{hint}")
        if self.must_exist and not Path(value).expanduser().is_dir():
            raise ProfileError(f"setting {name!r} = {str(value)!r}: no such folder; allowed is {self.allowed()}")
        return str(value)


@dataclass(frozen=True)
class OrNone:
    """``None`` or what ``spec`` allows (``""`` counts as ``None`` for a folder)."""

    spec: Any

    def allowed(self) -> str:
        return f"None or {self.spec.allowed()}"

    def check(self, name: str, value: Any) -> Any:
        if value is None or (value == "" and isinstance(self.spec, Folder)):
            return None
        return self.spec.check(name, value)


@dataclass(frozen=True)
class Tuple:
    """A tuple (a list from JSON/YAML is accepted) of items that ``item`` allows; ``length``: exactly so many."""

    item: Any
    length: Opt[int] = None

    def allowed(self) -> str:
        n = f"{self.length} " if self.length is not None else ""
        return f"a list of {n}items, each {self.item.allowed()}"

    def check(self, name: str, value: Any) -> tuple:
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
            raise ProfileError(f"setting {name!r} = {_show(value)}: allowed is {self.allowed()}")
        if self.length is not None and len(value) != self.length:
            raise ProfileError(f"setting {name!r} = {value!r} has {len(value)} items: allowed is {self.allowed()}")
        items = []
        for i, v in enumerate(value):
            try:
                items.append(self.item.check(f"{name}[{i}]", v))
            except ProfileError as err:
                raise ProfileError(f"setting {name!r} = {value!r}: item {i} is {_show(v)}; allowed is "
                                   f"{self.allowed()}") from err
        return tuple(items)


@dataclass(frozen=True)
class Dict:
    """A mapping with string keys (free-form extras)."""

    def allowed(self) -> str:
        return "a mapping with string keys"

    def check(self, name: str, value: Any) -> dict:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise ProfileError(f"setting {name!r} = {_show(value)}: allowed is {self.allowed()}")
        return dict(value)


Spec = Union[Int, Float, Bool, Choice, Folder, OrNone, Tuple, Dict]

_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


def parse_bool(name: str, value: Any) -> bool:
    """A notebook's boolean parameter as the user meant it: ``True``/``False``, or the text ``"true"``/``"false"``,
    ``"yes"``/``"no"``, ``"on"``/``"off"``, ``"1"``/``"0"`` in any case (papermill's ``-p`` passes ``true`` as
    text); ``0``/``1`` as integers too. Anything else is refused, naming the parameter."""
    if isinstance(value, bool):
        return value
    if _is_int(value) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ProfileError(f"parameter {name!r} = {_show(value)}: allowed is True or False "
                       f"(as text: true/false, yes/no, on/off, 1/0)")


def parse_mapping(name: str, value: Any) -> dict:
    """A notebook's mapping parameter (``settings``, ``blades``) as the user meant it: a mapping, nothing (``None``,
    ``""``), or its text in JSON or YAML (``-p settings '{"epochs": 1}'`` passes text; JSON is read first, so
    ``1e-4`` stays a number). Refused: text that is neither, or that is not a mapping."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        text = value
        try:
            value = json.loads(text)
        except ValueError:
            # imported here, not at the top: `import aigfd_lite` stays free of yaml (YAML values only)
            import yaml

            try:
                value = yaml.safe_load(text)
            except yaml.YAMLError as err:
                raise ProfileError(f"parameter {name!r} = {text!r} is neither JSON nor YAML ({err}); write "
                                   f"it as a mapping, e.g. '{{\"epochs\": 1}}'") from None
        if value is None:
            return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ProfileError(f"parameter {name!r} = {_show(value)}: allowed is a mapping of setting names to "
                           f"values, e.g. {{\"epochs\": 1}} (or its JSON/YAML text)")
    return dict(value)
