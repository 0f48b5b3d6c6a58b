"""Segment rules: parse, check and compile the SQL boolean expressions in the dictionary.

A rule is data, not code: it is written by people who change segment definitions through
review, and it ends up inside the membership model's SQL. So it is parsed with sqlglot and
accepted only if it is a plain boolean expression over known feature columns, built from an
allowlist of node types and functions. Anything else (a subquery, a statement, a function
outside the allowlist, a sensitive attribute) is refused with a message that names the problem.
The compiled SQL is regenerated from the parsed tree, never pasted from the input.

Before parsing, the rule is tokenized and refused when it holds a SQL comment (the text after
`--` is dropped from the compiled SQL, so a reviewer would approve one rule and run another)
or nests deeper than any real rule does (the parser recurses, and 2,000 parentheses would
exhaust Python's stack).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

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

# How deep a rule may nest parentheses, function calls, CASE and prefix operators. Real rules
# nest two or three levels; the parser recurses once per level, so a limit keeps a hostile or
# broken rule from exhausting the stack.
MAX_NESTING_DEPTH = 32

_READ_DIALECT = "duckdb"
_OPENERS = frozenset({TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.L_BRACE, TokenType.CASE})
_CLOSERS = frozenset({TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.R_BRACE, TokenType.END})
_PREFIX_OPERATORS = frozenset({TokenType.NOT, TokenType.DASH, TokenType.PLUS, TokenType.TILDE})
# What a rule that cannot be tokenized most likely left open: the closing text that makes it
# tokenize, and the problem in words.
_UNCLOSED = (
    ("'", "a string is never closed (a ' without its closing ')"),
    ('"', 'a quoted name is never closed (a " without its closing ")'),
    ("*/", "a /* comment is never closed"),
    ("$$", "a $$ string is never closed"),
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


def _tokenize(rule: str) -> list[Token]:
    """The rule's tokens; a rule that cannot be tokenized is refused with what was left open."""
    dialect = Dialect.get_or_raise(_READ_DIALECT)
    try:
        return dialect.tokenize(rule)
    except TokenError:
        pass
    for closing, problem in _UNCLOSED:
        try:
            dialect.tokenize(rule + closing)
        except TokenError:
            continue
        raise RuleError(f"rule is not valid SQL: {problem}")
    raise RuleError("rule is not valid SQL: it cannot be read as SQL tokens")


def _check_no_comments(tokens: list[Token]) -> None:
    """Refuse `--` and `/* */` comments (string literals are single tokens, so their content
    is never mistaken for one). A rule that is nothing but a comment has no tokens at all."""
    if not tokens or any(token.comments for token in tokens):
        raise RuleError(
            "rule contains a SQL comment ('--' or '/* */'); a comment is left out of the "
            "compiled SQL, so the rule would run differently from how it reads. Remove it and "
            "explain the rule in the description"
        )


def nesting_depth(tokens: list[Token]) -> int:
    """How deeply the tokens nest: brackets, function calls and CASE open a level, and each
    prefix operator in a run (`not not x`, `- - 1`) adds one."""
    depth = deepest = run = 0
    for token in tokens:
        if token.token_type in _OPENERS:
            depth += 1
        elif token.token_type in _CLOSERS:
            depth -= 1
        run = run + 1 if token.token_type in _PREFIX_OPERATORS else 0
        deepest = max(deepest, depth + run)
    return deepest


def _check_depth(tokens: list[Token]) -> None:
    depth = nesting_depth(tokens)
    if depth > MAX_NESTING_DEPTH:
        raise RuleError(
            f"rule is nested more than {MAX_NESTING_DEPTH} levels deep ({depth}); write it "
            "with fewer parentheses, function calls or repeated 'not'/'-'"
        )


def _parse(rule: str) -> exp.Expression:
    if not isinstance(rule, str) or not rule.strip():
        raise RuleError("rule is empty; write a SQL boolean expression such as 'frequency >= 2'")
    if ";" in rule:
        raise RuleError("rule contains ';': a rule is one expression, not SQL statements")
    tokens = _tokenize(rule)
    _check_no_comments(tokens)
    _check_depth(tokens)
    try:
        parsed = Dialect.get_or_raise(_READ_DIALECT).parser().parse(tokens, rule)
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

    Raises RuleError naming the first problem found: not SQL (an unclosed string included), a
    SQL comment, nested too deeply, not boolean, a subquery or statement, a disallowed
    function, a sensitive attribute, or an unknown column.
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
