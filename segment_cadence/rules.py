"""Segment rules: parse, check and compile the SQL boolean expressions in the dictionary.

A rule is data, not code: it is written by people who change segment definitions through
review, and it ends up inside the membership model's SQL. So it is parsed with sqlglot and
accepted only if it is a plain boolean expression over known feature columns, built from an
allowlist of node types and functions. Anything else (a subquery, a statement, a function
outside the allowlist, a sensitive attribute) is refused with a message that names the problem.
The compiled SQL is regenerated from the parsed tree, never pasted from the input.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

# Attributes that must never decide a segment (data minimisation). Matched against column
# names as whole words and common stems, so `customer_religion` or `health_flag` are caught.
SENSITIVE_ATTRIBUTES: tuple[str, ...] = (
    "race",
    "ethnicity",
    "ethnic",
    "religion",
    "religious",
    "caste",
    "health",
    "medical",
    "disability",
    "pregnancy",
    "sexual_orientation",
    "sexuality",
    "gender",
    "sex",
    "age",
    "age_band",
    "date_of_birth",
    "birth_date",
    "dob",
    "marital_status",
    "nationality",
    "political",
    "union_membership",
)

# Functions a rule may call. Everything here is deterministic, row-local and portable
# between DuckDB and Spark SQL.
ALLOWED_FUNCTIONS: frozenset[str] = frozenset(
    {"coalesce", "abs", "least", "greatest", "round", "floor", "ceil", "lower", "upper"}
)

_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ)
_BOOLEAN_ROOTS = (
    *_COMPARISONS,
    exp.And,
    exp.Or,
    exp.Not,
    exp.Between,
    exp.In,
    exp.Is,
    exp.Boolean,
)
_ALLOWED_NODES = (
    *_BOOLEAN_ROOTS,
    exp.Paren,
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Null,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.Mod,
    exp.Neg,
    exp.Tuple,
)
_FUNCTION_NODES = {
    exp.Coalesce: "coalesce",
    exp.Abs: "abs",
    exp.Least: "least",
    exp.Greatest: "greatest",
    exp.Round: "round",
    exp.Floor: "floor",
    exp.Ceil: "ceil",
    exp.Lower: "lower",
    exp.Upper: "upper",
}


class RuleError(ValueError):
    """A rule that cannot be accepted; the message says why in the reviewer's words."""


@dataclass(frozen=True)
class CompiledRule:
    """A checked rule: the columns it reads and its SQL, regenerated from the parse tree."""

    source: str
    columns: tuple[str, ...]
    sql: str


def is_sensitive(column: str) -> bool:
    """True when a column name names a sensitive attribute (whole name or a word in it)."""
    name = column.lower()
    words = set(name.split("_"))
    for attribute in SENSITIVE_ATTRIBUTES:
        if name == attribute or attribute in words or name.startswith(attribute + "_"):
            return True
    return False


def _parse(rule: str) -> exp.Expression:
    if not isinstance(rule, str) or not rule.strip():
        raise RuleError("rule is empty; write a SQL boolean expression such as 'frequency >= 2'")
    if ";" in rule:
        raise RuleError("rule contains ';': a rule is one expression, not SQL statements")
    try:
        parsed = sqlglot.parse(rule, read="duckdb")
    except ParseError as error:
        first = error.errors[0]["description"] if error.errors else str(error)
        raise RuleError(f"rule is not valid SQL: {first}") from None
    parsed = [p for p in parsed if p is not None]
    if len(parsed) != 1:
        raise RuleError("rule must be exactly one SQL expression")
    return parsed[0]


def _check_nodes(tree: exp.Expression) -> None:
    for node in tree.walk():
        if isinstance(node, exp.Query | exp.Subquery | exp.Select):
            raise RuleError("rule contains a subquery; rules may only read the customer's features")
        if isinstance(node, exp.Star):
            raise RuleError("rule contains '*'; name the feature columns it reads")
        if isinstance(node, exp.Func) and not isinstance(node, _BOOLEAN_ROOTS):
            name = _FUNCTION_NODES.get(type(node))
            if name is None:
                called = node.sql_name().lower() if hasattr(node, "sql_name") else type(node)
                if isinstance(node, exp.Anonymous):
                    called = str(node.name).lower()
                raise RuleError(
                    f"rule calls function '{called}', which is not allowed; "
                    f"allowed functions: {', '.join(sorted(ALLOWED_FUNCTIONS))}"
                )
            continue
        if isinstance(node, exp.Column) and node.table:
            raise RuleError(
                f"rule refers to '{node.sql()}'; use the bare feature name '{node.name}'"
            )
        if not isinstance(node, _ALLOWED_NODES):
            raise RuleError(
                f"rule contains '{node.sql()}' ({type(node).__name__}), which is not part of a "
                "plain boolean expression"
            )


def _check_boolean(tree: exp.Expression) -> None:
    root = tree
    while isinstance(root, exp.Paren):
        root = root.this
    if not isinstance(root, _BOOLEAN_ROOTS):
        raise RuleError(
            f"rule '{tree.sql()}' is not a boolean expression; compare a feature with a value, "
            "for example 'frequency >= 2'"
        )


def compile_rule(rule: str, known_columns: Iterable[str], dialect: str = "duckdb") -> CompiledRule:
    """Check a rule against the known feature columns and return its compiled SQL.

    Raises RuleError naming the first problem found: not SQL, not boolean, a subquery or
    statement, a disallowed function, a sensitive attribute, or an unknown column.
    """
    tree = _parse(rule)
    _check_nodes(tree)
    _check_boolean(tree)
    known = {c.lower() for c in known_columns}
    columns: list[str] = []
    for column in tree.find_all(exp.Column):
        name = column.name.lower()
        if is_sensitive(name):
            raise RuleError(
                f"rule uses sensitive attribute '{name}'; sensitive attributes may not decide "
                "a segment (data minimisation)"
            )
        if name not in known:
            hint = difflib.get_close_matches(name, sorted(known), n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise RuleError(f"rule uses unknown feature column '{name}'{suggestion}")
        if name not in columns:
            columns.append(name)
    return CompiledRule(source=rule, columns=tuple(columns), sql=tree.sql(dialect=dialect))
