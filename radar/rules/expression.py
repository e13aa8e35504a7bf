"""The ``when:`` condition language of rule files: small, typed, and safe to run as SQL.

Grammar (keywords are case-insensitive, column names are not)::

    condition  := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | predicate
    predicate  := operand [ ("==" | "!=" | "<" | "<=" | ">" | ">=") operand
                          | "is" ["not"] "null"
                          | ["not"] "in" "[" literal ("," literal)* "]"
                          | ["not"] "between" operand "and" operand ]
    operand    := literal | column | "(" condition ")"
    literal    := number | -number | 'string' | "string" | true | false | null

A quote inside a string is written twice (``'it''s'``). A bare boolean column (``consent_email``)
is a condition on its own.

Every condition is type-checked against a typed column catalogue (default
:data:`radar.domain.columns.CUSTOMER_COLUMNS`) *before* any data is seen: unknown columns (with a
"did you mean"), a string compared with a number, a boolean ordered with ``<``, a ``null`` compared
with ``==`` are all :class:`ExpressionError` with the 0-based ``offset`` of the offending token.
A string literal compared with a timestamp column must be an ISO date or date-time (UTC when it
has no offset).

:func:`compile_condition` turns a condition into DuckDB SQL in which every literal is a bound,
named parameter (``$p1``, ``$p2``, …) — a literal is never pasted into the SQL text — and column
names are only ever emitted from the catalogue's own names, double-quoted. SQL three-valued logic
applies: a comparison with a null column value is not true, so the customer does not match.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from radar.domain.columns import CUSTOMER_COLUMNS, Column
from radar.domain.suggest import did_you_mean

MAX_LENGTH = 10_000
MAX_DEPTH = 64

_KEYWORDS = frozenset({"and", "or", "not", "in", "is", "null", "true", "false", "between"})
_NUMBER = re.compile(r"\d+(\.\d+)?([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = ("==", "!=", "<=", ">=", "<", ">")
_SQL_OPERATORS = {"==": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_NUMERIC = frozenset({"number", "integer"})


class ExpressionError(Exception):
    """A condition that cannot be parsed or does not type-check.

    ``message`` says what is wrong, ``offset`` is the 0-based character offset in the condition
    text (``column`` is the 1-based column, for messages).
    """

    def __init__(self, message: str, offset: int) -> None:
        self.message = message
        self.offset = offset
        super().__init__(f"{message} (at column {offset + 1})")

    @property
    def column(self) -> int:
        return self.offset + 1


# --------------------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class Token:
    kind: str  # num, str, ident, kw, op, ( ) [ ] , - end
    text: str
    offset: int
    value: Any = None


def tokenize(text: str) -> list[Token]:
    """Split a condition into tokens; raises :class:`ExpressionError` on a bad character."""
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"condition longer than {MAX_LENGTH} characters", MAX_LENGTH)
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch.isdigit() or (ch == "." and i + 1 < n and text[i + 1].isdigit()):
            m = _NUMBER.match(text, i)
            assert m is not None
            raw = m.group(0)
            value: int | float = float(raw) if any(c in raw for c in ".eE") else int(raw)
            tokens.append(Token("num", raw, i, value))
            i = m.end()
            if i < n and (text[i].isalpha() or text[i] == "_"):
                raise ExpressionError(f"unexpected {text[i]!r} after number {raw}", i)
            continue
        if ch in "'\"":
            j, parts = i + 1, []
            while True:
                k = text.find(ch, j)
                if k < 0:
                    raise ExpressionError("unterminated string", i)
                parts.append(text[j:k])
                if k + 1 < n and text[k + 1] == ch:  # doubled quote: a literal quote
                    parts.append(ch)
                    j = k + 2
                    continue
                break
            tokens.append(Token("str", text[i : k + 1], i, "".join(parts)))
            i = k + 1
            continue
        m = _IDENT.match(text, i)
        if m:
            word = m.group(0)
            kind = "kw" if word.lower() in _KEYWORDS else "ident"
            tokens.append(Token(kind, word.lower() if kind == "kw" else word, i))
            i = m.end()
            continue
        op = next((o for o in _OPERATORS if text.startswith(o, i)), None)
        if op:
            tokens.append(Token("op", op, i))
            i += len(op)
            continue
        if ch == "=":
            raise ExpressionError("use '==' to compare", i)
        if text.startswith("<>", i):
            raise ExpressionError("use '!=' for 'not equal'", i)
        if ch in "()[],-":
            tokens.append(Token(ch, ch, i))
            i += 1
            continue
        if text.startswith("&&", i) or text.startswith("||", i):
            raise ExpressionError(f"use 'and' / 'or' instead of {text[i : i + 2]!r}", i)
        raise ExpressionError(f"unexpected character {ch!r}", i)
    tokens.append(Token("end", "", n))
    return tokens


# ------------------------------------------------------------------------------------------ AST


@dataclass(frozen=True)
class Lit:
    value: Any
    type: str  # string, number, integer, boolean, null
    offset: int


@dataclass(frozen=True)
class Col:
    column: Column
    offset: int


@dataclass(frozen=True)
class Cmp:
    op: str
    left: Node
    right: Node
    offset: int


@dataclass(frozen=True)
class BoolOp:
    op: str  # and / or
    items: tuple[Node, ...]
    offset: int


@dataclass(frozen=True)
class Not:
    operand: Node
    offset: int


@dataclass(frozen=True)
class InList:
    operand: Node
    items: tuple[Lit, ...]
    negated: bool
    offset: int


@dataclass(frozen=True)
class IsNull:
    operand: Node
    negated: bool
    offset: int


@dataclass(frozen=True)
class Between:
    operand: Node
    low: Node
    high: Node
    negated: bool
    offset: int


Node = Lit | Col | Cmp | BoolOp | Not | InList | IsNull | Between


def _offset(node: Node) -> int:
    if isinstance(node, Cmp | InList | IsNull | Between):
        return _offset(node.operand if not isinstance(node, Cmp) else node.left)
    return node.offset


# --------------------------------------------------------------------------------------- parser


@dataclass
class _Parser:
    tokens: list[Token]
    columns: Mapping[str, Column]
    pos: int = 0
    depth: int = 0
    referenced: list[str] = field(default_factory=list)

    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def next(self) -> Token:
        t = self.tokens[self.pos]
        self.pos += 1
        return t

    def at(self, kind: str, text: str | None = None) -> bool:
        t = self.tok
        return t.kind == kind and (text is None or t.text == text)

    def expect(self, kind: str, text: str, what: str) -> Token:
        if not self.at(kind, text):
            raise ExpressionError(f"expected {what}, found {_describe(self.tok)}", self.tok.offset)
        return self.next()

    def parse(self) -> Node:
        if self.at("end"):
            raise ExpressionError("empty condition", 0)
        node = self.or_expr()
        if not self.at("end"):
            raise ExpressionError(f"unexpected {_describe(self.tok)}", self.tok.offset)
        return node

    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while self.at("kw", "or"):
            self.next()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items), _offset(items[0]))

    def and_expr(self) -> Node:
        items = [self.not_expr()]
        while self.at("kw", "and"):
            self.next()
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items), _offset(items[0]))

    def not_expr(self) -> Node:
        if self.at("kw", "not"):
            t = self.next()
            self._enter(t)
            operand = self.not_expr()
            self.depth -= 1
            return Not(operand, t.offset)
        return self.predicate()

    def predicate(self) -> Node:
        left = self.operand()
        t = self.tok
        if t.kind == "op":
            self.next()
            return Cmp(t.text, left, self.operand(), t.offset)
        if self.at("kw", "is"):
            self.next()
            negated = False
            if self.at("kw", "not"):
                self.next()
                negated = True
            self.expect("kw", "null", "'null' after 'is'")
            return IsNull(left, negated, t.offset)
        negated = False
        if self.at("kw", "not"):
            nxt = self.tokens[self.pos + 1]
            if nxt.kind == "kw" and nxt.text in ("in", "between"):
                self.next()
                negated = True
            else:
                hint = " (did you mean 'is not null'?)" if nxt.text == "null" else ""
                raise ExpressionError(f"expected 'in' or 'between' after 'not'{hint}", t.offset)
        if self.at("kw", "in"):
            self.next()
            return InList(left, self.literal_list(), negated, t.offset)
        if self.at("kw", "between"):
            self.next()
            low = self.operand()
            self.expect("kw", "and", "'and' in 'between … and …'")
            high = self.operand()
            return Between(left, low, high, negated, t.offset)
        return left

    def literal_list(self) -> tuple[Lit, ...]:
        self.expect("[", "[", "'[' to start the list")
        items: list[Lit] = []
        if self.at("]"):
            raise ExpressionError("empty list after 'in'", self.tok.offset)
        while True:
            node = self.operand()
            if not isinstance(node, Lit):
                raise ExpressionError("a list after 'in' may hold only literals", _offset(node))
            items.append(node)
            if self.at(","):
                self.next()
                continue
            self.expect("]", "]", "',' or ']' in the list")
            return tuple(items)

    def operand(self) -> Node:
        t = self.tok
        if t.kind == "(":
            self.next()
            self._enter(t)
            node = self.or_expr()
            self.depth -= 1
            self.expect(")", ")", "')'")
            return node
        if t.kind == "num":
            self.next()
            return Lit(t.value, "integer" if isinstance(t.value, int) else "number", t.offset)
        if t.kind == "-":
            self.next()
            num = self.tok
            if num.kind != "num":
                raise ExpressionError("'-' must be followed by a number", t.offset)
            self.next()
            kind = "integer" if isinstance(num.value, int) else "number"
            return Lit(-num.value, kind, t.offset)
        if t.kind == "str":
            self.next()
            return Lit(t.value, "string", t.offset)
        if t.kind == "kw" and t.text in ("true", "false"):
            self.next()
            return Lit(t.text == "true", "boolean", t.offset)
        if t.kind == "kw" and t.text == "null":
            self.next()
            return Lit(None, "null", t.offset)
        if t.kind == "ident":
            self.next()
            col = self.columns.get(t.text)
            if col is None:
                hint = did_you_mean(t.text, self.columns)
                raise ExpressionError(f"unknown column {t.text!r}{hint}", t.offset)
            if col.name not in self.referenced:
                self.referenced.append(col.name)
            return Col(col, t.offset)
        raise ExpressionError(f"expected a column or a value, found {_describe(t)}", t.offset)

    def _enter(self, t: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"condition nested deeper than {MAX_DEPTH} levels", t.offset)


def _describe(t: Token) -> str:
    if t.kind == "end":
        return "end of condition"
    return f"{t.text!r}"


# --------------------------------------------------------------------------------- type checker


def _type(node: Node) -> str:
    """The type of ``node`` (``boolean`` for every predicate); raises on a type error."""
    if isinstance(node, Lit):
        return node.type
    if isinstance(node, Col):
        return node.column.type
    if isinstance(node, Cmp):
        _check_comparable(node.left, node.right, node.op, node.offset)
        return "boolean"
    if isinstance(node, BoolOp):
        for item in node.items:
            _require_condition(item, f"'{node.op}'")
        return "boolean"
    if isinstance(node, Not):
        _require_condition(node.operand, "'not'")
        return "boolean"
    if isinstance(node, IsNull):
        _type(node.operand)
        return "boolean"
    if isinstance(node, InList):
        for item in node.items:
            _check_comparable(node.operand, item, "in", item.offset)
        return "boolean"
    if isinstance(node, Between):
        _check_comparable(node.operand, node.low, "between", _offset(node.low))
        _check_comparable(node.operand, node.high, "between", _offset(node.high))
        return "boolean"
    raise AssertionError(node)  # pragma: no cover


def _require_condition(node: Node, where: str) -> None:
    t = _type(node)
    if t == "boolean":
        return
    if isinstance(node, Col):
        msg = f"column {node.column.name!r} is {_a(t)}, not a condition: compare it with a value"
    else:
        msg = f"{where} needs a condition, found {_a(t)}"
    raise ExpressionError(msg, _offset(node))


def _a(t: str) -> str:
    return f"an {t}" if t[0] in "aeiou" else f"a {t}"


def _what(node: Node) -> str:
    if isinstance(node, Col):
        return f"column {node.column.name!r} ({node.column.type})"
    if isinstance(node, Lit):
        return f"{node.type} {_literal_text(node)}"
    return f"{_a(_type(node))}"


def _literal_text(lit: Lit) -> str:
    if lit.type == "string":
        return repr(lit.value)
    if lit.type == "null":
        return "null"
    if lit.type == "boolean":
        return "true" if lit.value else "false"
    return str(lit.value)


def _check_comparable(left: Node, right: Node, op: str, offset: int) -> None:
    lt, rt = _type(left), _type(right)
    if "null" in (lt, rt):
        hint = "use 'is null' / 'is not null'" if op in ("==", "!=") else "null has no order"
        raise ExpressionError(f"cannot compare with null using {op!r}: {hint}", offset)
    if lt in _NUMERIC and rt in _NUMERIC:
        return
    if lt == "timestamp" or rt == "timestamp":
        other, other_t = (right, rt) if lt == "timestamp" else (left, lt)
        if other_t == "timestamp":
            return
        if isinstance(other, Lit) and other_t == "string":
            _timestamp_literal(other)
            return
        raise ExpressionError(
            f"type error: cannot compare {_what(left)} with {_what(right)}", offset
        )
    if lt != rt:
        raise ExpressionError(
            f"type error: cannot compare {_what(left)} with {_what(right)}", offset
        )
    if lt == "boolean" and op in ("<", "<=", ">", ">=", "between"):
        raise ExpressionError(f"type error: booleans have no order, cannot use {op!r}", offset)


def _timestamp_literal(lit: Lit) -> str:
    """The ISO text (UTC) of a string literal compared with a timestamp column."""
    try:
        moment = datetime.fromisoformat(str(lit.value))
    except ValueError:
        raise ExpressionError(
            f"type error: {lit.value!r} is not an ISO date or date-time "
            "(compared with a timestamp column)",
            lit.offset,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


# ------------------------------------------------------------------------------------- public API


@dataclass(frozen=True)
class Condition:
    """A parsed and type-checked condition: its AST and the columns it references (in order)."""

    text: str
    node: Node
    columns: tuple[str, ...]


class CompiledCondition(NamedTuple):
    """DuckDB SQL for a condition: ``sql`` uses named parameters ``$<prefix><n>`` bound from
    ``params``; ``columns`` are the catalogue columns the condition references."""

    sql: str
    params: dict[str, Any]
    columns: tuple[str, ...]


def parse_condition(text: str, columns: Mapping[str, Column] | None = None) -> Condition:
    """Parse and type-check ``text``; raises :class:`ExpressionError` (with an offset)."""
    catalogue = CUSTOMER_COLUMNS if columns is None else columns
    parser = _Parser(tokenize(text), catalogue)
    node = parser.parse()
    _require_condition(node, "the rule")
    return Condition(text, node, tuple(parser.referenced))


def quote_identifier(name: str) -> str:
    """A DuckDB double-quoted identifier."""
    return '"' + name.replace('"', '""') + '"'


def compile_condition(
    text: str | Condition,
    columns: Mapping[str, Column] | None = None,
    *,
    param_prefix: str = "p",
    table_alias: str | None = None,
) -> CompiledCondition:
    """Compile a condition to DuckDB SQL with bound parameters.

    ``param_prefix`` names the parameters (``$p1``…); give each condition its own prefix when
    several are combined into one query. ``table_alias`` qualifies the column names.
    """
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", param_prefix):
        raise ValueError(f"bad parameter prefix {param_prefix!r}")
    if table_alias is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", table_alias):
        raise ValueError(f"bad table alias {table_alias!r}")
    cond = text if isinstance(text, Condition) else parse_condition(text, columns)
    params: dict[str, Any] = {}
    qualifier = f"{table_alias}." if table_alias else ""

    def bind(value: Any, cast: str | None = None) -> str:
        name = f"{param_prefix}{len(params) + 1}"
        params[name] = value
        return f"CAST(${name} AS {cast})" if cast else f"${name}"

    def emit_literal(lit: Lit, against: Node | None) -> str:
        if against is not None and _type(against) == "timestamp" and lit.type == "string":
            return bind(_timestamp_literal(lit), "TIMESTAMPTZ")
        if lit.type == "null":
            return "NULL"
        return bind(lit.value)

    def emit(node: Node, against: Node | None = None) -> str:
        if isinstance(node, Lit):
            return emit_literal(node, against)
        if isinstance(node, Col):
            return qualifier + quote_identifier(node.column.name)
        if isinstance(node, Cmp):
            left = emit(node.left, node.right)
            right = emit(node.right, node.left)
            return f"({left} {_SQL_OPERATORS[node.op]} {right})"
        if isinstance(node, BoolOp):
            joiner = f" {node.op.upper()} "
            return "(" + joiner.join(emit(i) for i in node.items) + ")"
        if isinstance(node, Not):
            return f"(NOT {emit(node.operand)})"
        if isinstance(node, IsNull):
            return f"({emit(node.operand)} IS {'NOT ' if node.negated else ''}NULL)"
        if isinstance(node, InList):
            operand = emit(node.operand)
            items = ", ".join(emit(i, node.operand) for i in node.items)
            return f"({operand} {'NOT ' if node.negated else ''}IN ({items}))"
        if isinstance(node, Between):
            operand = emit(node.operand)
            low, high = emit(node.low, node.operand), emit(node.high, node.operand)
            return f"({operand} {'NOT ' if node.negated else ''}BETWEEN {low} AND {high})"
        raise AssertionError(node)  # pragma: no cover

    return CompiledCondition(emit(cond.node), params, cond.columns)
