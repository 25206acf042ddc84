"""Expand panel SQL the way Grafana and grafana-clickhouse-datasource do, for running it elsewhere.

Order, as in the plugin: `$__conditionalAll` (frontend), then Grafana template variables (frontend),
then the backend macros (`$__timeFilter`, `$__fromTime`, `$__toTime`, `$__interval_s`). Any other
`$__` macro is refused rather than passed through, so a panel using one fails the SQL check.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

ALL = "$__all"  # the value Grafana stores when "All" is selected

_VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(?!__)(\w+)")
_MACRO = re.compile(r"\$__(\w+)(?:\(([^()]*)\))?")
_CONDITIONAL_ALL = "$__conditionalAll("


class MacroError(ValueError):
    """The SQL uses a macro, variable or format this expander does not know."""


@dataclass(frozen=True)
class QueryContext:
    """Time range, interval and variable values, as Grafana would send them."""

    time_from: datetime
    time_to: datetime
    interval_s: int
    variables: Mapping[str, str | list[str]] = field(default_factory=dict)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _is_all(value: str | list[str]) -> bool:
    return value in (ALL, [ALL], "")


def _macro_args(sql: str, open_paren: int) -> tuple[list[str], int]:
    """Split the arguments of a call starting at `open_paren`; return them and the closing index."""
    depth, start, args = 0, open_paren + 1, []
    for i in range(open_paren, len(sql)):
        char = sql[i]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                args.append(sql[start:i])
                return args, i
        elif char == "," and depth == 1:
            args.append(sql[start:i])
            start = i + 1
    raise MacroError(f"unbalanced parentheses after position {open_paren}")


def apply_conditional_all(sql: str, variables: Mapping[str, str | list[str]]) -> str:
    """`$__conditionalAll(condition, $var)` -> `1=1` when var is All (or empty), else the condition."""
    while (at := sql.rfind(_CONDITIONAL_ALL)) != -1:
        args, end = _macro_args(sql, at + len(_CONDITIONAL_ALL) - 1)
        if len(args) != 2:
            raise MacroError(f"$__conditionalAll takes 2 arguments, got {len(args)}")
        name = args[1].strip().lstrip("$").strip("{}")
        if name not in variables:
            raise MacroError(f"unknown variable {name!r} in $__conditionalAll")
        phrase = "1=1" if _is_all(variables[name]) else args[0]
        sql = sql[:at] + phrase + sql[end + 1 :]
    return sql


def _format(value: str | list[str], fmt: str | None) -> str:
    if _is_all(value):
        raise MacroError("an All selection is only supported inside $__conditionalAll")
    values = value if isinstance(value, list) else [value]
    if fmt == "singlequote":
        return ",".join(_quote(v) for v in values)
    if fmt is None:  # the plugin's own formatter: lists quoted and joined, single values raw
        return ",".join(_quote(v) for v in values) if isinstance(value, list) else value
    raise MacroError(f"unsupported variable format {fmt!r}")


def apply_variables(sql: str, variables: Mapping[str, str | list[str]]) -> str:
    """Replace `${name}`, `${name:singlequote}` and `$name` with their values."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        if name not in variables:
            raise MacroError(f"unknown variable ${name}")
        return _format(variables[name], match.group(2))

    return _VARIABLE.sub(replace, sql)


def apply_backend_macros(sql: str, context: QueryContext) -> str:
    """The plugin's backend macros, with its exact expansions."""
    start, end = int(context.time_from.timestamp()), int(context.time_to.timestamp())

    def replace(match: re.Match[str]) -> str:
        name, arg = match.group(1), match.group(2)
        if name == "timeFilter" and arg:
            column = arg.strip()
            return f"{column} >= toDateTime({start}) AND {column} <= toDateTime({end})"
        if name == "fromTime" and arg is None:
            return f"toDateTime({start})"
        if name == "toTime" and arg is None:
            return f"toDateTime({end})"
        if name == "interval_s" and arg is None:
            return str(max(int(context.interval_s), 1))
        raise MacroError(f"unsupported macro {match.group(0)}")

    return _MACRO.sub(replace, sql)


def expand(sql: str, context: QueryContext) -> str:
    """Panel SQL as ClickHouse would receive it from Grafana."""
    sql = apply_conditional_all(sql, context.variables)
    sql = apply_variables(sql, context.variables)
    return apply_backend_macros(sql, context)
