"""Small typed schemas for JSON that comes from a file: each field is checked for its
type and bounds, and a bad value is one line naming the file and the field
(`run.json: field 'metrics[3].test_acc' must be a number, got a string`).

A schema is built from a few checkers (`Str`, `Int`, `Num`, `Bool`, `List`, `Obj`,
`Optional`, `Anything`); `Obj` lists the fields zoo reads, and keeps any other field
as it is (bounded only by the file's size and depth caps), so files written by a
newer zoo still load. Extend a schema by adding fields to its `Obj`:

    RUN = Obj({"model": Str(name=True), ...})
    RUN.fields["my_new_key"] = Optional(Str())
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import DataError, ZooError
from .safeio import for_display
from .spec import NAME_PATTERN  # the registry's rule for model and dataset names

MAX_CLASSES = 100_000  # ImageNet-21k has 21,841
MAX_CLASS_NAME = 200  # characters
MAX_TEXT = 4096  # any other string zoo reads from a file


class SchemaError(Exception):
    """A value that does not fit; `path` is the field, e.g. 'metrics[3].test_acc'."""

    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path, self.message = path, message


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)


class Checker:
    expected = "a value"

    def check(self, value: Any, path: str) -> Any:  # returns the value, possibly normalised
        raise NotImplementedError

    def fail(self, value: Any, path: str, why: str = "") -> SchemaError:
        return SchemaError(path, why or f"must be {self.expected}, got {_kind(value)}")


@dataclass
class Anything(Checker):
    def check(self, value, path):
        return value


@dataclass
class Str(Checker):
    max_len: int = MAX_TEXT
    name: bool = False  # held to the registry's name rule (lowercase, digits, . _ -)
    choices: tuple[str, ...] = ()
    pattern: str = ""
    expected = "a string"

    def check(self, value, path):
        if not isinstance(value, str):
            raise self.fail(value, path)
        if len(value) > self.max_len:
            raise self.fail(value, path, f"is {len(value):,} characters, over zoo's limit of {self.max_len:,}")
        if self.name and not NAME_PATTERN.match(value):
            raise self.fail(value, path, f"'{for_display(value, 80)}' is not a valid zoo name "
                                         "(lowercase letters, digits, '.', '_', '-'; at most 64)")
        if self.choices and value not in self.choices:
            raise self.fail(value, path, f"'{for_display(value, 80)}' is not one of {', '.join(self.choices)}")
        if self.pattern and not re.fullmatch(self.pattern, value):
            raise self.fail(value, path, f"'{for_display(value, 80)}' is not of the form {self.pattern}")
        return value


@dataclass
class Int(Checker):
    min: int | None = None
    max: int | None = None
    expected = "an integer"

    def check(self, value, path):
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(value, path)
        if _out_of_range(value, self.min, self.max):
            raise self.fail(value, path, f"is {value}, {_range(self.min, self.max)}")
        return value


def _out_of_range(value, low, high) -> bool:
    return (low is not None and value < low) or (high is not None and value > high)


def _range(low, high) -> str:
    """The bounds a value broke, in words: a bound that is None is not there, so never 'outside 0..None'."""
    if low is not None and high is not None:
        return f"outside {low}..{high}"
    return f"it must be >= {low}" if low is not None else f"it must be <= {high}"


@dataclass
class Num(Checker):
    min: float | None = None
    max: float | None = None
    finite: bool = False  # NaN is allowed by default: a diverged epoch records it
    positive: bool = False
    expected = "a number"

    def check(self, value, path):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(value, path)
        value = float(value)
        if (self.finite or self.positive) and not math.isfinite(value):
            raise self.fail(value, path, f"is {value}, it must be a finite number")
        if self.positive and value <= 0:
            raise self.fail(value, path, f"is {value}, it must be above 0")
        if _out_of_range(value, self.min, self.max):
            raise self.fail(value, path, f"is {value}, {_range(self.min, self.max)}")
        return value


@dataclass
class Bool(Checker):
    expected = "true or false"

    def check(self, value, path):
        if not isinstance(value, bool):
            raise self.fail(value, path)
        return value


@dataclass
class Optional(Checker):
    inner: Checker

    def check(self, value, path):
        return None if value is None else self.inner.check(value, path)


@dataclass
class List(Checker):
    item: Checker
    max_items: int = MAX_CLASSES
    length: int | None = None
    expected = "a list"

    def check(self, value, path):
        if not isinstance(value, list):
            raise self.fail(value, path)
        if len(value) > self.max_items:
            raise self.fail(value, path, f"has {len(value):,} items, over zoo's limit of {self.max_items:,}")
        if self.length is not None and len(value) != self.length:
            raise self.fail(value, path, f"has {len(value)} items, expected {self.length}")
        return [self.item.check(v, f"{path}[{i}]") for i, v in enumerate(value)]


@dataclass
class Obj(Checker):
    """An object whose listed fields are checked; `required` ones must be present.
    Other fields are kept as they are (a newer zoo may write more)."""

    fields: dict[str, Checker] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    values: Checker | None = None  # for maps: every value checked by this
    expected = "an object"

    def check(self, value, path):
        if not isinstance(value, dict):
            raise self.fail(value, path)
        prefix = f"{path}." if path else ""
        for key in self.required:
            if key not in value:
                raise SchemaError(f"{prefix}{key}", "is missing")
        out = dict(value)
        for key, checker in self.fields.items():
            if key in value:
                out[key] = checker.check(value[key], f"{prefix}{key}")
        if self.values is not None:
            for key, item in value.items():
                if key not in self.fields:
                    out[key] = self.values.check(item, f"{prefix}{key}")
        return out


@dataclass
class Agrees(Checker):
    """`inner`, then `rule(value, path)`: a check across fields (the header's epoch against its
    metrics), which raises SchemaError naming the field that disagrees. A wrapper, so that
    `inner`'s fields stay open to extension."""

    inner: Checker
    rule: Callable[[Any, str], None]

    def check(self, value, path):
        value = self.inner.check(value, path)
        self.rule(value, path)
        return value


@dataclass
class JsonText(Checker):
    """A string holding JSON (ONNX metadata values), parsed under a length and depth cap,
    then checked by `inner`."""

    inner: Checker
    max_len: int = 1 << 20
    expected = "JSON text"

    def check(self, value, path):
        import json

        from .safeio import JSON_MAX_DEPTH, json_depth

        if not isinstance(value, str):
            raise self.fail(value, path)
        if len(value) > self.max_len:
            raise self.fail(value, path, f"is {len(value):,} characters, over zoo's limit of {self.max_len:,}")
        try:
            parsed = json.loads(value)
        except RecursionError:
            parsed = None
        except ValueError as exc:
            raise self.fail(value, path, f"is not valid JSON ({exc})") from exc
        if parsed is None and value.strip() != "null" or json_depth(parsed) > JSON_MAX_DEPTH:
            raise self.fail(value, path, f"is JSON nested deeper than zoo's limit of {JSON_MAX_DEPTH} levels")
        return self.inner.check(parsed, path)


def class_names(length: int | None = None) -> List:
    return List(Str(max_len=MAX_CLASS_NAME), max_items=MAX_CLASSES, length=length)


def validate(value: Any, schema: Checker, where: str, error: type[ZooError] = DataError, hint: str = "") -> Any:
    """`value` checked against `schema`, or `error`: '<where>: field 'x.y' must be ...'."""
    try:
        return schema.check(value, "")
    except SchemaError as exc:
        field_name = f"field '{for_display(exc.path, 80)}'" if exc.path else "the top level"
        raise error(f"{for_display(where)}: {field_name} {exc.message}" + (f"; {hint}" if hint else "")) from exc
