"""The one codec of the run model: a dataclass of :mod:`bpmon.runmodel` to a JSON object and back.

Both directions are derived from the dataclass's fields and type hints, so a field added to the
model is written and read by every writer and reader at once, and no writer spells out a format
of its own. Conventions:

- A float that is not finite is written as ``null`` (JSON has none) and read back as NaN; for a
  field typed ``float | None``, ``null`` reads as None ("not measured").
- Tuples are JSON arrays; a nested dataclass is an object; a :class:`~bpmon.config.RunConfig` is
  its preset tables, read back through the preset loader's own validation.
- A field whose metadata says ``record=False`` is not written; reading, it takes the value the
  reader gives for it (``given``) or its default. ``key`` renames it in the file; ``null_as`` is
  what ``null`` reads as where the type has no None.

Reading is for files from other machines: every value is checked against its field's type and
range, and anything else is a :class:`DecodeError` naming the key, the value and what was
expected, never another exception. Ints are whole numbers from 0 to 2**53 (what every JSON
reader holds exactly); floats are finite (a literal like ``1e400`` parses as infinity and is
refused) or null; strings go through :func:`bpmon.text.printable`, so that no control character
read from a file reaches the terminal; a key the model does not know is ignored (a later
version's field).
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
from collections.abc import Callable, Collection, Mapping
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from bpmon.config import RunConfig
from bpmon.errors import BpmonError
from bpmon.text import printable

T = TypeVar("T")

# The largest int every JSON reader holds exactly; a larger one in a count is corrupt, not a
# number to compute with (a step of 10**30 would overflow the reader's arrays).
INT_MAX = 2**53
# How much of an offending value a message shows.
SHOWN = 40


class DecodeError(ValueError):
    """A value in a record that does not fit its field. ``path`` is where (``layers[2].fan_in``),
    ``problem`` what is wrong (``= "abc": expected an integer from 0 to 2**53``)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(path, problem)
        self.path = path
        self.problem = problem

    def within(self, key: str | int) -> DecodeError:
        """The same error, one level out: under ``key`` (a field) or ``[key]`` (an index)."""
        step = f"[{key}]" if isinstance(key, int) else key
        joined = (
            step + self.path
            if self.path.startswith("[") or not self.path
            else step + "." + self.path
        )
        return DecodeError(joined, self.problem)

    def __str__(self) -> str:
        if self.problem.startswith("="):
            return f"{self.path or 'line'} {self.problem}"
        return f"{self.path or 'line'}: {self.problem}"


# -- writing ---------------------------------------------------------------------------------


def to_record(obj: Any, omit: Collection[str] = ()) -> dict[str, Any]:
    """``obj`` (a dataclass of the run model) as a JSON-ready dict: its recorded fields, under
    their keys, NaN and infinities as None. ``omit`` names fields a writer does not know, so
    that a reader can tell "none" (``"findings": []``) from "not known" (no key)."""
    return {
        key: _encode(getattr(obj, f.name))
        for f, key, _ in _fields(type(obj))
        if _recorded(f) and f.name not in omit and not _left_out(f, obj)
    }


def encode_fields(cls: type[Any], **values: Any) -> dict[str, Any]:
    """Some fields of ``cls`` as :func:`to_record` writes them, for a writer that fills a line
    in steps (the PyTorch bridge's logged figures arrive after its gradients)."""
    keys = {f.name: key for f, key, _ in _fields(cls)}
    return {keys[name]: _encode(value) for name, value in values.items()}


def dumps(obj: Any) -> str:
    """``obj`` as one line of a run file, without its newline."""
    return json.dumps(to_record(obj), allow_nan=False, separators=(",", ":"))


def _encode(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    if isinstance(value, RunConfig):
        return json.loads(json.dumps(dataclasses.asdict(value)))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_record(value)
    return value


# -- reading ---------------------------------------------------------------------------------

Decoder = Callable[[Any], Any]


def from_record(cls: type[T], record: object, given: Mapping[str, Any] | None = None) -> T:
    """A ``cls`` from ``record`` (a parsed JSON object), every recorded field checked; fields
    not recorded take ``given[name]`` or their default."""
    return _decoder(cls)(record, given)  # type: ignore[no-any-return]


def field_reader(cls: type[Any], name: str) -> Decoder:
    """The reader of one field of ``cls`` (the value under its key in a record), for a scan
    that needs a few fields of many lines."""
    for f, key, hint in _fields(cls):
        if f.name == name:
            return _field_reader(_decoder(hint), key, f.metadata.get("null_as"))
    raise KeyError(name)


def _field_reader(decode: Decoder, key: str, null_as: Any) -> Decoder:
    def read(value: Any) -> Any:
        if value is None and null_as is not None:
            return null_as
        try:
            return decode(value)
        except DecodeError as exc:
            raise exc.within(key) from None

    return read


def _refuse(value: Any, expected: str) -> DecodeError:
    return DecodeError("", f"= {_show(value)}: expected {expected}")


_DECODERS: dict[Any, Any] = {}


def _decoder(hint: Any) -> Any:
    """The function that reads a value of type ``hint``, built once per type: reading a file
    of millions of lines must not inspect type hints on every value."""
    found = _DECODERS.get(hint)
    if found is None:
        found = _DECODERS[hint] = _build(hint)
    return found


def _build(hint: Any) -> Any:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [o for o in get_args(hint) if o is not type(None)]
        if set(options) == {float, str}:
            # A fact quoted in advice: a number or a word, told apart by the JSON type.
            inner = _number_or_text
        elif len(options) != 1:
            raise TypeError(f"no reading for {hint!r}")  # not in the model
        else:
            inner = _decoder(options[0])
        if type(None) not in get_args(hint):
            return inner
        return lambda value: None if value is None else inner(value)
    if origin is Literal:
        return _literal(get_args(hint))
    if origin is tuple:
        args = get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return _sequence(_decoder(args[0]))
        return _fixed(tuple(_decoder(a) for a in args))
    simple = {float: _float, int: _int, bool: _bool, str: _str, RunConfig: _config}
    if hint in simple:
        return simple[hint]
    if dataclasses.is_dataclass(hint):
        return _dataclass(hint)  # type: ignore[arg-type]
    raise TypeError(f"no reading for {hint!r}")  # not in the model


def _literal(choices: tuple[Any, ...]) -> Decoder:
    allowed = frozenset(choices)
    expected = "one of " + ", ".join(repr(c) for c in choices)

    def read(value: Any) -> Any:
        if isinstance(value, str) and value in allowed:
            return value
        raise _refuse(value, expected)

    return read


def _sequence(item: Decoder) -> Decoder:
    def read(value: Any) -> tuple[Any, ...]:
        if type(value) is not list:
            raise _refuse(value, "a list")
        try:
            return tuple([item(v) for v in value])
        except DecodeError:
            for i, v in enumerate(value):  # only on failure: find which item
                try:
                    item(v)
                except DecodeError as exc:
                    raise exc.within(i) from None
            raise

    return read


def _fixed(items: tuple[Decoder, ...]) -> Decoder:
    def read(value: Any) -> tuple[Any, ...]:
        if type(value) is not list or len(value) != len(items):
            raise _refuse(value, f"a list of {len(items)}")
        out = []
        for i, (decode, v) in enumerate(zip(items, value, strict=True)):
            try:
                out.append(decode(v))
            except DecodeError as exc:
                raise exc.within(i) from None
        return tuple(out)

    return read


def _float(value: Any) -> float:
    kind = type(value)
    if kind is float:
        if math.isfinite(value):
            return value  # type: ignore[no-any-return]
        raise _refuse(value, "a finite number or null")
    if value is None:
        return math.nan
    if kind is int and -INT_MAX <= value <= INT_MAX:
        return float(value)
    raise _refuse(value, "a number or null")


def _number_or_text(value: Any) -> float | str:
    return _str(value) if type(value) is str else _float(value)


def _int(value: Any) -> int:
    if type(value) is int and 0 <= value <= INT_MAX:
        return value
    raise _refuse(value, "an integer from 0 to 2**53")


def _bool(value: Any) -> bool:
    if type(value) is bool:
        return value
    raise _refuse(value, "true or false")


def _str(value: Any) -> str:
    if type(value) is str:
        return value if value.isprintable() else printable(value)
    raise _refuse(value, "a string")


def _config(value: Any) -> RunConfig:
    from bpmon.presets import parse_tables

    if type(value) is not dict:
        raise _refuse(value, "an object")
    try:
        return parse_tables(value, "config")
    except BpmonError as exc:
        raise DecodeError("", printable(str(exc))) from None
    except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as exc:
        raise DecodeError("", printable(str(exc))) from None


def _dataclass(cls: type[Any]) -> Callable[[Any, Mapping[str, Any] | None], Any]:
    # Split once: the recorded fields, read from the record (a field whose key is absent takes
    # what is given, its default, or what _missing says "unknown" is), and the others.
    recorded = []
    unrecorded = []
    for f, key, hint in _fields(cls):
        fallback = (f.name, key, _has_default(f), hint)
        if _recorded(f):
            null = (True, f.metadata["null_as"]) if "null_as" in f.metadata else (False, None)
            recorded.append((key, _decoder(hint), *null, f.metadata.get("rule"), fallback))
        else:
            unrecorded.append(fallback)

    def fill(values: dict[str, Any], fallback: tuple[Any, ...], given: Mapping[str, Any]) -> None:
        name, key, has_default, hint = fallback
        if name in given:
            values[name] = given[name]
        elif not has_default:
            values[name] = _missing(hint, key)

    def read(record: Any, given: Mapping[str, Any] | None = None) -> Any:
        if type(record) is not dict:
            raise _refuse(record, "an object")
        given = given or {}
        values: dict[str, Any] = {}
        for key, decode, has_null, null_as, rule, fallback in recorded:
            if key not in record:
                fill(values, fallback, given)
                continue
            raw = record[key]
            if raw is None and has_null:
                values[fallback[0]] = null_as
                continue
            try:
                value = decode(raw)
                if rule is not None:
                    try:
                        value = rule.accept(value)
                    except ValueError as exc:
                        raise _refuse(raw, str(exc)) from None
            except DecodeError as exc:
                raise exc.within(key) from None
            values[fallback[0]] = value
        for fallback in unrecorded:
            fill(values, fallback, given)
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:  # a model's own check of its values
            raise DecodeError("", printable(str(exc))) from None

    return read


def _missing(hint: Any, key: str) -> Any:
    """A required field the record leaves out: None, NaN or () where that says "unknown"."""
    if type(None) in get_args(hint):
        return None
    if hint is float:
        return math.nan
    if get_origin(hint) is tuple:
        return ()
    raise DecodeError(key, "missing")


def _show(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        text = "?"
    text = printable(text)
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


# -- the fields ------------------------------------------------------------------------------


_Fields = tuple[tuple[dataclasses.Field[Any], str, Any], ...]
_FIELDS: dict[type[Any], _Fields] = {}


def _fields(cls: type[Any]) -> _Fields:
    """Each field of ``cls`` with its key in a record and its resolved type hint."""
    found = _FIELDS.get(cls)
    if found is None:
        hints = get_type_hints(cls)
        found = tuple(
            (f, f.metadata.get("key", f.name), hints[f.name]) for f in dataclasses.fields(cls)
        )
        _FIELDS[cls] = found
    return found


def _recorded(f: dataclasses.Field[Any]) -> bool:
    return bool(f.metadata.get("record", True))


def _left_out(f: dataclasses.Field[Any], obj: Any) -> bool:
    """A field marked ``sparse`` is written only when it differs from its default: a series
    only one writer keeps (the PyTorch bridge's per-update loss) costs the others nothing."""
    return bool(f.metadata.get("sparse")) and getattr(obj, f.name) == f.default


def _has_default(f: dataclasses.Field[Any]) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


__all__ = ["DecodeError", "dumps", "encode_fields", "from_record", "to_record"]
