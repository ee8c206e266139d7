"""Contracts as Python dataclasses: the one definition of every fact that crosses the TypeScript–Python seam.

A contract is a dataclass whose fields carry their JSON meaning: Python names are snake_case, JSON keys are
their camelCase (`metadata={"json": ...}` overrides), types are built from int, float, bool, str, None,
`Optional`, `List`, `Dict[str, X]`, `Literal` (enums), `Any` (free JSON) and other contracts. Field metadata
adds what a type cannot say: `doc`, `minimum`, `maximum`, `exclusiveMinimum`, `pattern`, `ts` (a TypeScript
type spelled out, e.g. a template literal).

From these classes this module
  * parses JSON into instances, checking every field and naming the first bad one (`ContractError`),
  * dumps instances to JSON-ready dicts,
  * emits a JSON Schema document and the TypeScript declarations (`vtrans/contracts.py` writes both files and
    checks that the committed copies are current, so a change on one side alone fails the tests).
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from typing import Any, Literal, Union

JsonValue = Any


class ContractError(ValueError):
    """A JSON value that does not fit its contract; the message names the field: `distill.alpha: ...`."""


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def json_key(f: dataclasses.Field) -> str:
    return f.metadata.get("json") or camel(f.name)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=False)


def _args(tp: Any) -> tuple:
    return typing.get_args(tp)


def _origin(tp: Any) -> Any:
    return typing.get_origin(tp)


def _is_union(tp: Any) -> bool:
    return _origin(tp) in (Union, types.UnionType)


def _is_optional(tp: Any) -> bool:
    return _is_union(tp) and type(None) in _args(tp)


def _strip_optional(tp: Any) -> Any:
    if not _is_optional(tp):
        return tp
    rest = [a for a in _args(tp) if a is not type(None)]
    return rest[0] if len(rest) == 1 else Union[tuple(rest)]  # noqa: UP007  (built at run time)


def fields_of(cls: type) -> list[tuple[dataclasses.Field, Any]]:
    hints = _hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls)]


def has_default(f: dataclasses.Field) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    raise KeyError(f.name)


# ----------------------------------------------------------------------------------------------------------------
# Parsing


def _where(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _show(value: Any) -> str:
    import json

    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fail(path: str, expected: str, value: Any) -> ContractError:
    return ContractError(f"{path or 'value'}: must be {expected}, got {_show(value)}")


def _describe(tp: Any) -> str:
    tp = _strip_optional(tp)
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is bool:
        return "true or false"
    if tp is str:
        return "a string"
    if _origin(tp) is Literal:
        return "one of " + ", ".join(str(a) for a in _args(tp))
    if _origin(tp) in (list, tuple):
        return "a list"
    if _origin(tp) is dict or dataclasses.is_dataclass(tp):
        return "an object"
    return "a JSON value"


def parse(tp: Any, value: Any, path: str = "", strict: bool = True) -> Any:
    """`value` (parsed JSON) as an instance of `tp`. `strict` refuses unknown object keys (requests); files
    written by another version are read with `strict=False`, which ignores them."""
    if tp is Any:
        return value
    if _is_optional(tp):
        return None if value is None else parse(_strip_optional(tp), value, path, strict)
    origin = _origin(tp)
    if _is_union(tp):
        errors = []
        for member in _args(tp):
            try:
                return parse(member, value, path, strict)
            except ContractError as e:
                errors.append(str(e))
        raise ContractError(errors[0] if len(errors) == 1 else f"{path or 'value'}: fits none of its forms ({'; '.join(errors)})")
    if origin is Literal:
        if value not in _args(tp) or isinstance(value, bool) != any(isinstance(a, bool) for a in _args(tp)):
            raise _fail(path, _describe(tp), value)
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise _fail(path, "true or false", value)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
                return int(value)
            raise _fail(path, "an integer", value)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _fail(path, "a finite number", value)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _fail(path, "a string", value)
        return value
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise _fail(path, "a list", value)
        (item,) = _args(tp)[:1] or (Any,)
        return [parse(item, v, f"{path}[{i}]", strict) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _fail(path, "an object", value)
        _, item = _args(tp) or (str, Any)
        return {str(k): parse(item, v, _where(path, str(k)), strict) for k, v in value.items()}
    if tp is dict:
        if not isinstance(value, dict):
            raise _fail(path, "an object", value)
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _parse_dataclass(tp, value, path, strict)
    raise TypeError(f"no JSON form for {tp!r}")


def _parse_dataclass(cls: type, value: Any, path: str, strict: bool) -> Any:
    if not isinstance(value, dict):
        raise _fail(path, "an object", value)
    known = {json_key(f): (f, tp) for f, tp in fields_of(cls)}
    if strict:
        unknown = sorted(k for k in value if k not in known)
        if unknown:
            raise ContractError(f"{path or 'params'}: unknown field(s) {', '.join(unknown)} (known: {', '.join(known)})")
    kwargs = {}
    for key, (f, tp) in known.items():
        where = _where(path, key)
        if key not in value or (value[key] is None and has_default(f) and not _is_optional(tp)):
            if not has_default(f):
                raise ContractError(f"{where}: is required")
            continue
        parsed = parse(tp, value[key], where, strict)
        _check_range(f, parsed, where, value[key])
        kwargs[f.name] = parsed
    return cls(**kwargs)


def _check_range(f: dataclasses.Field, v: Any, where: str, raw: Any) -> None:
    m = f.metadata
    if v is None:
        return
    values = v if isinstance(v, list) else [v]
    raws = raw if isinstance(raw, list) else [raw]
    for x, shown in zip(values, raws):
        if not isinstance(x, (int, float)) or isinstance(x, bool):
            if "pattern" in m and isinstance(x, str) and not re.fullmatch(m["pattern"], x):
                raise ContractError(f"{where}: must match {m['pattern']}, got {_show(shown)}")
            continue
        lo, hi, xlo = m.get("minimum"), m.get("maximum"), m.get("exclusiveMinimum")
        if (lo is not None and x < lo) or (hi is not None and x > hi) or (xlo is not None and x <= xlo):
            raise ContractError(f"{where}: must be {_range_text(m)}, got {_show(shown)}")


def _range_text(m: typing.Mapping[str, Any]) -> str:
    lo = (
        f"> {m['exclusiveMinimum']}"
        if m.get("exclusiveMinimum") is not None
        else (f">= {m['minimum']}" if m.get("minimum") is not None else None)
    )
    hi = f"<= {m['maximum']}" if m.get("maximum") is not None else None
    return " and ".join(x for x in (lo, hi) if x)


# ----------------------------------------------------------------------------------------------------------------
# Dumping


def dump(value: Any) -> Any:
    """An instance (or a structure of them) as JSON-ready data with camelCase keys."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # A field that is None by default and None now is left out (absent, not null).
        return {
            json_key(f): dump(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not (f.default is None and getattr(value, f.name) is None)
        }
    if isinstance(value, dict):
        return {k: dump(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [dump(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return value.item()
    return value


# ----------------------------------------------------------------------------------------------------------------
# JSON Schema and TypeScript


class Emitter:
    """Emits JSON Schema and TypeScript for a set of root contracts. `enums` names Literal types
    (`{"Method": Literal[...]}`) so both outputs refer to them by name; `inputs` are the contracts the client
    sends, whose defaulted fields are optional in TypeScript (outputs always carry every field)."""

    def __init__(self, roots: list[type], enums: dict[str, Any], inputs: set[type]):
        self.enums = enums
        self.inputs = inputs
        self.classes: list[type] = []
        for r in roots:
            self._collect(r)

    def _collect(self, tp: Any) -> None:
        tp = _strip_optional(tp)
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            if tp in self.classes:
                return
            for _, ftp in fields_of(tp):
                self._collect(ftp)
            self.classes.append(tp)
        for a in _args(tp) if _origin(tp) is not Literal else ():
            self._collect(a)

    def _enum_name(self, tp: Any) -> str | None:
        for name, alias in self.enums.items():
            if _args(alias) == _args(tp):
                return name
        return None

    # -- JSON Schema ---------------------------------------------------------------------------------------
    def schema_of(self, tp: Any, meta: typing.Mapping[str, Any] | None = None) -> dict:
        meta = meta or {}
        if _is_optional(tp):
            inner = self.schema_of(_strip_optional(tp), meta)
            return {"anyOf": [inner, {"type": "null"}]}
        origin = _origin(tp)
        if tp is Any:
            return {}
        if _is_union(tp):
            return {"anyOf": [self.schema_of(a) for a in _args(tp)]}
        if origin is Literal:
            name = self._enum_name(tp)
            return {"$ref": f"#/$defs/{name}"} if name else {"enum": list(_args(tp))}
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            return {"$ref": f"#/$defs/{tp.__name__}"}
        if origin in (list, tuple):
            return {"type": "array", "items": self.schema_of((_args(tp) or (Any,))[0], meta)}
        if origin is dict or tp is dict:
            return {"type": "object", "additionalProperties": self.schema_of((_args(tp) or (str, Any))[1])}
        base = {int: {"type": "integer"}, float: {"type": "number"}, bool: {"type": "boolean"}, str: {"type": "string"}}[tp]
        extra = {k: meta[k] for k in ("minimum", "maximum", "exclusiveMinimum", "pattern") if k in meta}
        return {**base, **extra}

    def json_schema(self, title: str) -> dict:
        defs: dict[str, Any] = {name: {"enum": list(_args(alias))} for name, alias in self.enums.items()}
        for cls in self.classes:
            props, required = {}, []
            for f, tp in fields_of(cls):
                s = self.schema_of(tp, f.metadata)
                if f.metadata.get("doc"):
                    s = {**s, "description": f.metadata["doc"]}
                if has_default(f):
                    d = default_of(f)
                    s = {**s, "default": dump(d)}
                else:
                    required.append(json_key(f))
                props[json_key(f)] = s
            d = {"type": "object", "properties": props, "required": required, "additionalProperties": False}
            if cls.__doc__:
                d["description"] = " ".join(cls.__doc__.split())
            defs[cls.__name__] = d
        return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title, "$defs": defs}

    # -- TypeScript ----------------------------------------------------------------------------------------
    def ts_type(self, tp: Any, meta: typing.Mapping[str, Any] | None = None) -> str:
        if meta and meta.get("ts"):
            return meta["ts"]
        if _is_optional(tp):
            return f"{self.ts_type(_strip_optional(tp), meta)} | null"
        origin = _origin(tp)
        if tp is Any:
            return "unknown"
        if _is_union(tp):
            return " | ".join(self.ts_type(a) for a in _args(tp))
        if origin is Literal:
            return self._enum_name(tp) or " | ".join(_ts_literal(a) for a in _args(tp))
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            return tp.__name__
        if origin in (list, tuple):
            inner = self.ts_type((_args(tp) or (Any,))[0])
            return f"{inner}[]" if re.fullmatch(r"[\w.]+", inner) else f"Array<{inner}>"
        if origin is dict or tp is dict:
            return f"Record<string, {self.ts_type((_args(tp) or (str, Any))[1])}>"
        return {int: "number", float: "number", bool: "boolean", str: "string"}[tp]

    def typescript(self, header: str) -> str:
        out = [header, ""]
        for name, alias in self.enums.items():
            values = ", ".join(_ts_literal(a) for a in _args(alias))
            out.append(f"export type {name} = {' | '.join(_ts_literal(a) for a in _args(alias))};")
            out.append(f"export const {_const_name(name)}: readonly {name}[] = [{values}];")
        out.append("")
        for cls in self.classes:
            if cls.__doc__:
                out.append(_ts_doc(cls.__doc__, ""))
            if not dataclasses.fields(cls):
                out.append(f"export type {cls.__name__} = Record<string, never>;")
                out.append("")
                continue
            out.append(f"export interface {cls.__name__} {{")
            for f, tp in fields_of(cls):
                if f.metadata.get("doc"):
                    out.append(_ts_doc(f.metadata["doc"], "  "))
                # Inputs may leave out what has a default; outputs leave out only fields that are None by
                # default (dump omits them), and always carry the rest.
                absent_when_none = has_default(f) and f.default is None
                if cls in self.inputs:
                    optional, shown = has_default(f), tp
                else:
                    optional, shown = absent_when_none, (_strip_optional(tp) if absent_when_none else tp)
                out.append(f"  {json_key(f)}{'?' if optional else ''}: {self.ts_type(shown, f.metadata)};")
            out.append("}")
            out.append("")
        return "\n".join(out)

    def ts_defaults(self, name: str, cls: type) -> str:
        """`export const NAME = {...} as const` with the defaulted fields of `cls` (nested contracts inlined)."""

        values = {json_key(f): dump(default_of(f)) for f, _ in fields_of(cls) if has_default(f)}
        return f"/** The defaults of {cls.__name__}, as the backend applies them. */\nexport const {name} = {ts_value(values)} as const;\n"


_IDENTIFIER = re.compile(r"[A-Za-z_$][\w$]*")


def ts_value(v: Any) -> str:
    """A JSON value as a TypeScript literal in the project's style (single quotes, bare identifier keys)."""
    if isinstance(v, dict):
        items = [f"{k if _IDENTIFIER.fullmatch(k) else _ts_literal(k)}: {ts_value(x)}" for k, x in v.items()]
        return "{ " + ", ".join(items) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(ts_value(x) for x in v) + "]"
    if v is None:
        return "null"
    return _ts_literal(v)


def _ts_literal(v: Any) -> str:
    if isinstance(v, float):
        return re.sub(r"e([+-]?)0*(\d)", lambda m: "e" + m.group(1).replace("+", "") + m.group(2), repr(v))
    return "'" + str(v).replace("'", "\\'") + "'" if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)


def _const_name(type_name: str) -> str:
    """`BudgetKind` -> `BUDGET_KINDS`, `Granularity` -> `GRANULARITIES`, `Status` -> `STATUSES`."""
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", type_name).upper()
    if snake.endswith("Y"):
        return snake[:-1] + "IES"
    return snake + ("ES" if snake.endswith(("S", "SH", "CH", "X")) else "S")


def _ts_doc(text: str, indent: str) -> str:
    lines = [" ".join(text.split())]
    return f"{indent}/** {lines[0]} */"
