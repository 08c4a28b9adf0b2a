"""Dotted keys on nested frozen dataclasses (what ``-p sources.standard.epochs 100`` resolves through).

A dataclass field whose type is itself a dataclass (or ``X | None``) is a *group*; its fields are
addressed as ``group.field`` to any depth. Values given as text (the command line, a notebook's
``overrides`` JSON) are converted to the field's type: int, float, bool, str, or a tuple of them
written comma-separated ("1,2", "0,0.25"). Unknown keys raise naming the key and listing the valid
keys of its group. Nothing here knows about profiles; :mod:`advlib.config` builds on it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing


@functools.lru_cache(maxsize=None)
def hints(cls) -> dict:
    """The resolved field types of dataclass ``cls``."""
    return typing.get_type_hints(cls)


def group_class(typ):
    """The dataclass of a group field's type (``Recipe`` or ``Recipe | None``), else None."""
    if dataclasses.is_dataclass(typ):
        return typ
    if typing.get_origin(typ) in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(typ) if a is not type(None)]
        if len(inner) == 1 and dataclasses.is_dataclass(inner[0]):
            return inner[0]
    return None


def field_names(cls, skip=()) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.name not in skip]


def leaf_keys(cls, prefix: str = "", skip=()) -> list[str]:
    """Every dotted key of ``cls`` that names a value (not a group), in declaration order."""
    out = []
    for name, typ in hints(cls).items():
        if name in skip or name not in field_names(cls):
            continue
        sub = group_class(typ)
        out += leaf_keys(sub, f"{prefix}{name}.") if sub else [prefix + name]
    return out


def resolve(cls, key: str, what: str = "key", skip=()) -> tuple[type, ...]:
    """The type of the value ``key`` names in ``cls`` (a group's class for a group key); an unknown
    key raises ValueError naming it and listing the valid keys of the group it is looked up in."""
    parts, group, here = key.split("."), cls, ""
    for i, part in enumerate(parts):
        known = {k: v for k, v in hints(group).items() if k in field_names(group, skip if i == 0 else ())}
        if part not in known:
            where = f"of {here}" if here else "at the top level"
            raise ValueError(f"unknown {what} {key!r}: no {part!r} {where}; valid keys {where}: {', '.join(known)}")
        typ = known[part]
        here = f"{here}.{part}" if here else part
        sub = group_class(typ)
        if i < len(parts) - 1:
            if sub is None:
                raise ValueError(f"unknown {what} {key!r}: {here} is a value, not a group")
            group = sub
        else:
            return sub or typ
    raise AssertionError(key)


def flatten(values: dict, cls, prefix: str = "", what: str = "key", skip=()) -> dict:
    """``{"sources": {"standard": {"epochs": 3}}, "seed": 1}`` -> ``{"sources.standard.epochs": 3,
    "seed": 1}``: a dict given for a group descends into it; dotted keys stay as they are."""
    out = {}
    for k, v in values.items():
        key = prefix + k
        if isinstance(v, dict):
            sub = resolve(cls, key, what, skip)
            if not dataclasses.is_dataclass(sub):
                raise ValueError(f"{what} {key!r} takes a value, got an object {v!r}")
            out.update(flatten(v, cls, key + ".", what, skip))
        else:
            out[key] = v
    return out


def _number(key: str, text: str, typ, whole, what: str):
    try:
        v = float(text)
    except ValueError:
        v = None
    if v is None or not math.isfinite(v) or (typ is int and v != int(v)):
        kind = "a finite integer" if typ is int else "a finite number"
        raise ValueError(f"{what} {key!r}: {text!r} is not {kind} (expected comma-separated numbers, "
                         f"got {whole!r})")
    return int(v) if typ is int else v


def coerce(key: str, value, typ, what: str = "key"):
    """``value`` as ``typ`` (int, float, bool, str or ``tuple[T, ...]``); text is parsed, a tuple may
    be given as comma-separated text or a list. A value that does not fit raises naming ``key``."""
    if typing.get_origin(typ) is tuple:
        item = typing.get_args(typ)[0]
        parts = ([p.strip() for p in value.split(",") if p.strip()] if isinstance(value, str)
                 else list(value) if isinstance(value, (list, tuple)) else [value])
        return tuple(_number(key, p, item, value, what) if isinstance(p, str) and item in (int, float)
                     else coerce(key, p, item, what) for p in parts)
    if isinstance(value, str):
        if typ is bool:
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"{what} {key!r}: expected a boolean, got {value!r}")
        if typ in (int, float):
            try:
                return typ(value)
            except ValueError:
                raise ValueError(f"{what} {key!r}: expected {typ.__name__}, got {value!r}") from None
        return value
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typ is int and isinstance(value, float) and value == int(value):
        return int(value)
    return value


def replace(obj, key: str, value, missing=None):
    """``obj`` with the field at dotted ``key`` replaced (frozen dataclasses all the way down); a
    group that is None on the way is first made by ``missing(path)``."""
    head, _, rest = key.partition(".")
    if not rest:
        return dataclasses.replace(obj, **{head: value})
    sub = getattr(obj, head)
    if sub is None:
        if missing is None:
            raise ValueError(f"{head} is empty (None): nothing to set {rest!r} on")
        sub = missing(head)
    inner = None if missing is None else (lambda path: missing(f"{head}.{path}"))
    return dataclasses.replace(obj, **{head: replace(sub, rest, value, inner)})


def text(value) -> str:
    """A value as ``-p`` takes it: a tuple comma-separated, an empty string as ''."""
    if isinstance(value, tuple):
        value = ",".join(str(v) for v in value)
    return "''" if value == "" else str(value)


def get(obj, key: str):
    for part in key.split("."):
        obj = None if obj is None else getattr(obj, part)
    return obj


def from_dict(cls, values: dict, what: str = "key", prefix: str = ""):
    """Build ``cls`` from a (JSON) dict as ``asdict`` wrote it: groups from dicts (None stays None),
    tuples from lists; an unknown key raises naming it."""
    types = hints(cls)
    kwargs = {}
    for k, v in values.items():
        if k not in field_names(cls):
            raise ValueError(f"unknown {what} {prefix + k!r}; valid keys: {', '.join(field_names(cls))}")
        sub = group_class(types[k])
        if sub is not None and v is not None:
            kwargs[k] = from_dict(sub, v, what, f"{prefix}{k}.")
        else:
            kwargs[k] = v if sub is not None else coerce(prefix + k, v, types[k], what)
    return cls(**kwargs)


__all__ = ["hints", "text", "group_class", "field_names", "leaf_keys", "resolve", "flatten", "coerce", "replace", "get", "from_dict"]
