"""A source kind's own keys: the checks of its `Options` dataclass, derived from each field's type
and metadata (`url`, `secret`), so that a source module declares its keys once."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from listener.config import checks as c
from listener.config.checks import INVALID, Check, Reader
from listener.config.text import join


def option_check(hint: Any, metadata: Mapping[str, Any]) -> Check | None:
    """The check for a field of a source's Options, from its type and metadata."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) != 1:
            return None
        hint, origin = args[0], typing.get_origin(args[0])
    item: Check
    if hint is str:
        item = c.string(empty=True)
    elif hint is bool:
        return c.boolean
    elif hint is int:
        return c.integer()
    elif hint is float:
        return c.number()
    elif hint is timedelta:
        return c.duration()
    elif origin is tuple and typing.get_args(hint) in ((str, ...),):
        item = c.string()
        if metadata.get("url"):
            item = c.url
        elif metadata.get("secret"):
            item = c.env_name
        return c.list_of(item, unique=False)
    else:
        return None
    if metadata.get("url"):
        return c.url
    if metadata.get("secret"):
        return c.env_name
    return item


def parse_options(r: Reader, path: str, t: Mapping[str, Any], options_class: type) -> Any:
    before = len(r.problems)
    hints = typing.get_type_hints(options_class)
    values = {}
    for f in dataclasses.fields(options_class):
        if not f.init:
            continue
        where = join(path, f.name)
        check = option_check(hints[f.name], f.metadata)
        if check is None:  # pragma: no cover - a source kind with a field type we can't read
            raise TypeError(f"{options_class.__qualname__}.{f.name}: unsupported option type {hints[f.name]}")
        if f.name in t:
            values[f.name] = check(r, where, t[f.name])
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            r.problem(where, "required key is missing")
    if len(r.problems) > before:
        return INVALID
    try:
        return options_class(**values)
    except (TypeError, ValueError) as e:  # the Options class's own validation
        return r.problem(path, str(e))


