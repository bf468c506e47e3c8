"""The pipeline's parameters: a strict schema for params.yaml, and one-line errors from it.

Error messages are derived from the schema (field types and bounds), so a new field needs
no new message code.
"""

import reprlib
from pathlib import Path
from typing import Any, Literal, cast, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from mltoy.errors import ParamsError


class _Section(BaseModel):
    # Strict, so that "0.3" or `true` is an error rather than a silent coercion; strict
    # floats still accept integers, so `C: 1` is fine.
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


class SplitParams(_Section):
    """How `prepare` splits the raw data into train and test sets."""

    test_size: float = Field(gt=0, lt=1)
    seed: int = Field(ge=0)


class TrainParams(_Section):
    """The logistic regression's hyper-parameters, used by `train`."""

    C: float = Field(gt=0)
    max_iter: int = Field(ge=1)
    seed: int = Field(ge=0)


class EvaluateParams(_Section):
    """How `evaluate` averages per-class scores into one number."""

    average: Literal["macro", "weighted", "micro"]


class Params(_Section):
    """The whole file: every stage validates all of it before it touches any file."""

    split: SplitParams
    train: TrainParams
    evaluate: EvaluateParams


def load_params(path: str | Path) -> Params:
    """Read and validate a params file; any problem is a ParamsError naming the file."""
    source = Path(path)
    try:
        text = source.read_bytes()
    except OSError as error:
        raise ParamsError(f"{source}: cannot read: {error.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ParamsError(f"{source}: {_yaml_problem(error)}") from None
    return parse_params(document, source=str(source))


def parse_params(document: Any, *, source: str) -> Params:
    """Validate already-parsed params; `source` says where they came from in messages."""
    if document is None:
        raise ParamsError(f"{source}: no params (required: {_describe_model(Params)})")
    if not isinstance(document, dict):
        raise ParamsError(
            f"{source}: top level is a {type(document).__name__}; must be {_describe_model(Params)}"
        )
    try:
        return Params.model_validate(document)
    except ValidationError as error:
        first, *rest = error.errors()
        more = f" (and {len(rest)} more)" if rest else ""
        raise ParamsError(f"{source}: {_explain(first)}{more}") from None


def _yaml_problem(error: yaml.YAMLError) -> str:
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {error.problem}"
    return f"invalid YAML: {error}"


def _explain(detail: ErrorDetails) -> str:
    loc = detail["loc"]
    key = ".".join(map(str, loc))
    section = ".".join(map(str, loc[:-1]))
    model = _model_at(loc[:-1])
    if detail["type"] == "extra_forbidden":
        where = f"in {section}" if section else "at top level"
        allowed = ", ".join(model.model_fields)
        return f"{key} = {_show(detail['input'])}: unknown key (allowed keys {where}: {allowed})"
    required = _describe(model.model_fields[cast(str, loc[-1])])
    if detail["type"] == "missing":
        return f"{key} is missing (required: {required})"
    return f"{key} = {_show(detail['input'])}: must be {required}"


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel]:
    model: type[BaseModel] = Params
    for part in loc:
        model = cast(type[BaseModel], model.model_fields[cast(str, part)].annotation)
    return model


_KINDS: dict[object, str] = {float: "a finite number", int: "an integer"}
_BOUNDS = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))


def _describe(field: FieldInfo) -> str:
    """What a field accepts, in words: 'a finite number > 0 and < 1'."""
    kind = field.annotation
    if get_origin(kind) is Literal:
        return "one of " + ", ".join(map(repr, get_args(kind)))
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return _describe_model(kind)
    bounds = " and ".join(
        f"{symbol} {getattr(rule, name)}"
        for rule in field.metadata
        for name, symbol in _BOUNDS
        if hasattr(rule, name)
    )
    return f"{_KINDS[kind]} {bounds}" if bounds else _KINDS[kind]


def _describe_model(model: type[BaseModel]) -> str:
    return "a mapping with keys " + ", ".join(model.model_fields)


def _show(value: object) -> str:
    """A value as YAML spells it (true, null), shortened if long."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return reprlib.repr(value)
