"""JSON payloads: strict encoding (what Postgres JSONB holds exactly) and typed decoding."""

from __future__ import annotations

import dataclasses
import decimal
import functools
import json
import math
import sys
import typing
from typing import Any

import orjson

_OPTS = orjson.OPT_SERIALIZE_DATACLASS | orjson.OPT_SERIALIZE_UUID


def _default(obj: Any) -> Any:
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    if isinstance(obj, decimal.Decimal):
        if not obj.is_finite():
            raise ValueError(f"{obj} is not valid JSON")
        return str(obj)
    raise TypeError(f"Type is not JSON serializable: {type(obj).__name__}")


def _check(value: Any, what: str) -> None:
    """Reject what JSON or JSONB cannot hold exactly: NaN/Infinity and NUL in strings."""
    stack = [value]
    while stack:
        v = stack.pop()
        t = type(v)
        if t is str:
            if "\x00" in v:
                raise ValueError(f"{what}: strings may not contain NUL (\\u0000)")
        elif t is float:
            if not math.isfinite(v):
                raise ValueError(f"{what}: {v} is not valid JSON")
        elif t is dict:
            for k, item in v.items():
                if type(k) is not str:
                    raise TypeError(f"{what}: dict keys must be strings, got {k!r}")
                if "\x00" in k:
                    raise ValueError(f"{what}: keys may not contain NUL (\\u0000)")
                stack.append(item)
        elif t is list or t is tuple:
            stack.extend(v)
        elif t in (int, bool) or v is None:
            continue
        elif dataclasses.is_dataclass(v) and not isinstance(v, type):
            stack.append(dataclasses.asdict(v))
        elif callable(getattr(v, "model_dump", None)):
            stack.append(v.model_dump(mode="json"))


def dumps(value: Any, what: str = "value") -> str:
    """Encode ``value`` to JSON text, or raise ``TypeError``/``ValueError`` naming ``what``."""
    _check(value, what)
    try:
        return orjson.dumps(value, default=_default, option=_OPTS).decode()
    except orjson.JSONEncodeError as exc:
        if "recursion" in str(exc).lower():
            return _deep_dumps(value, what)
        if "str is not valid UTF-8" in str(exc):
            raise ValueError(f"{what}: strings must be valid UTF-8 (no lone surrogates)") from None
        raise TypeError(f"{what} is not JSON-encodable: {exc}") from None


MAX_DEPTH = 10_000


def _deeply(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a recursive codec with room for up to MAX_DEPTH levels of nesting."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, MAX_DEPTH * 2 + 100))
    try:
        return fn(*args, **kwargs)
    finally:
        sys.setrecursionlimit(old)


def _deep_dumps(value: Any, what: str) -> str:
    try:
        text: str = _deeply(json.dumps, value, default=_default, allow_nan=False,
                            ensure_ascii=False, separators=(",", ":"))
        return text
    except RecursionError:
        raise ValueError(f"{what} is nested more than {MAX_DEPTH} levels deep") from None


def loads(text: str | bytes | None) -> Any:
    """Decode JSON text (``None`` stays ``None``)."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return _deeply(json.loads, text)


def to_jsonable(value: Any, what: str = "value") -> Any:
    """A plain JSON value (dicts, lists, str, numbers) equal to ``value`` once encoded."""
    return loads(dumps(value, what))


def decode_as(value: Any, hint: Any) -> Any:
    """Turn a decoded JSON value into the type ``hint`` names, by pydantic's ``TypeAdapter``:
    dataclasses, pydantic models, datetime/date/time, Enum, UUID, Decimal, ``list[T]``,
    ``dict[str, T]``, unions and optionals all round-trip. A value the hint does not describe
    is passed on unchanged, as the function would get it without annotations; only a dataclass
    or model that cannot be built from it raises."""
    if value is None or hint is None or hint is Any or hint in _AS_IS:
        return value
    adapter = _adapter(hint)
    if adapter is not None:
        try:
            return adapter.validate_python(value)
        except Exception:
            pass
    return _decode_plainly(value, hint)


# JSON scalars under a scalar hint reach the function exactly as sent (an int stays an int
# under ``float``, as it would without annotations).
_AS_IS = frozenset({int, float, str, bool})


@functools.lru_cache(maxsize=1024)
def _cached_adapter(hint: Any) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(hint)


def _adapter(hint: Any) -> Any:
    try:
        return _cached_adapter(hint)
    except Exception:  # an unhashable hint, or one pydantic cannot describe
        return None


def _decode_plainly(value: Any, hint: Any) -> Any:
    """Without pydantic's help: build dataclasses and models, keep anything else as it is."""
    origin = typing.get_origin(hint)
    if origin in (list, tuple, set) and isinstance(value, list):
        args = typing.get_args(hint)
        if args:
            return origin(_decode_plainly(v, args[0]) for v in value)
        return value
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        for arg in typing.get_args(hint):
            if arg is not type(None):
                try:
                    return _decode_plainly(value, arg)
                except (TypeError, ValueError):
                    continue
        return value
    if isinstance(hint, type):
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            hints = _hints(hint)
            fields = {f.name for f in dataclasses.fields(hint)}
            return hint(**{k: _decode_plainly(v, hints.get(k)) for k, v in value.items()
                           if k in fields})
        validate = getattr(hint, "model_validate", None)
        if callable(validate) and isinstance(value, dict):
            return validate(value)
    return value


def _hints(obj: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(obj)
    except Exception:
        return {}


def param_hints(fn: Any) -> tuple[list[Any], Any]:
    """The annotated types of ``fn``'s positional parameters and of its return value."""
    try:
        return _param_hints(fn)
    except TypeError:  # an unhashable callable
        return _param_hints.__wrapped__(fn)


@functools.lru_cache(maxsize=4096)
def _param_hints(fn: Any) -> tuple[list[Any], Any]:
    import inspect

    hints = _hints(fn)
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return [], hints.get("return")
    return [hints.get(p.name) for p in params
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)], hints.get("return")


def decode_args(fn: Any, args: list[Any]) -> list[Any]:
    """Decode positional arguments by ``fn``'s annotations."""
    hints, _ = param_hints(fn)
    if not any(hints):
        return args
    return [decode_as(a, hints[i] if i < len(hints) else None) for i, a in enumerate(args)]
