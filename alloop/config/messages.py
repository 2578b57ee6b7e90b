"""pydantic validation errors as one line each: ``<dotted key path>: <reason>``, with 'did you mean' for typos."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, get_args

from pydantic import BaseModel, ValidationError

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails


def _key_path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "campaign"


def _fields_at(root: type[BaseModel], loc: Sequence[Any]) -> list[str] | None:
    """Field names of the section of ``root`` a location points into (for 'did you mean')."""
    cls: Any = root
    for part in loc:
        field = cls.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return None
        candidates = (field.annotation, *get_args(field.annotation))
        cls = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if cls is None:
            return None
    return list(cls.model_fields)


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _reason(err: ErrorDetails, root: type[BaseModel]) -> str:
    kind, ctx, got = err["type"], err.get("ctx") or {}, err.get("input")
    bounds = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
    if kind in bounds:
        limit = next(iter(ctx.values()))
        limit = f"{limit:g}" if isinstance(limit, float) else limit
        return f"must be {bounds[kind]} {limit} (got {short(got)})"
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        known = _fields_at(root, err["loc"][:-1])
        if not known:
            return "unknown key"
        close = difflib.get_close_matches(str(err["loc"][-1]), known, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return f"unknown key; {hint}(known: {', '.join(known)})"
    if kind == "literal_error":
        return f"must be {ctx.get('expected')} (got {short(got)})"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"must be an integer (got {short(got)})"
    if kind in ("float_parsing", "float_type"):
        return f"must be a number (got {short(got)})"
    if kind in ("bool_parsing", "bool_type"):
        return f"must be true or false (got {short(got)})"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"must be a mapping (got {short(got)})"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx.get('pattern')} (got {short(got)})"
    if kind in ("value_error", "assertion_error"):
        return err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return f"{err['msg']} (got {short(got)})"


def format_validation_error(exc: ValidationError, root: type[BaseModel]) -> str:
    """One line per error of validating ``root``, each ``<dotted key path>: <reason>``."""
    lines = [f"{_key_path(err['loc'])}: {_reason(err, root)}" for err in exc.errors()]
    return "\n".join(dict.fromkeys(lines))
