"""Replies as JSON, for the outbox: written in a transaction, delivered after it."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

from bot import types

_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        types.Reply,
        types.Text,
        types.Notice,
        types.Mention,
        types.Line,
        types.TagMatch,
        types.PresenceView,
        types.PersonCard,
        types.Article,
        types.Button,
        types.Option,
        types.Picker,
        types.Actions,
        types.FormField,
        types.Form,
    )
}


# Looked up by exact type first: every answer is encoded once to be kept with its
# request, and asking dataclasses about each value was most of that.
_FIELDS = {cls: tuple(f.name for f in dataclasses.fields(cls)) for cls in _TYPES.values()}
_PLAIN = frozenset({str, int, float, bool, type(None)})


def _encode(value: Any) -> Any:
    kind = type(value)
    if kind in _PLAIN:
        return value
    names = _FIELDS.get(kind)
    if names is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = tuple(f.name for f in dataclasses.fields(value))
    if names is not None:
        fields = {name: _encode(getattr(value, name)) for name in names}
        return {"type": kind.__name__, "fields": fields}
    if isinstance(value, tuple | list):
        return [_encode(item) for item in value]
    if isinstance(value, datetime):
        return {"type": "datetime", "iso": value.isoformat()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        # Every sequence in the neutral types is a tuple.
        return tuple(_decode(item) for item in value)
    if isinstance(value, dict):
        kind = value.get("type")
        if kind == "datetime":
            return datetime.fromisoformat(value["iso"])
        if kind in _TYPES:
            return _TYPES[kind](**{k: _decode(v) for k, v in value["fields"].items()})
        raise ValueError(f"not an encoded reply element: {kind!r}")
    return value


def dumps(reply: types.Reply) -> str:
    return json.dumps(_encode(reply), ensure_ascii=False, separators=(",", ":"))


def loads(text: str) -> types.Reply:
    reply = _decode(json.loads(text))
    if not isinstance(reply, types.Reply):
        raise ValueError("not an encoded reply")
    return reply
