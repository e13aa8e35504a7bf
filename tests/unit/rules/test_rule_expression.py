"""The when: condition language: parsing, type checking before data, safe SQL."""

from __future__ import annotations

import duckdb
import pytest

from radar.domain.columns import Column
from radar.rules.expression import ExpressionError, compile_condition, parse_condition

CATALOGUE = {
    c.name: c
    for c in (
        Column("customer_id", "string", ""),
        Column("segment", "string", ""),
        Column("clv", "number", ""),
        Column("purchases", "integer", ""),
        Column("consent_email", "boolean", ""),
        Column("last_purchase_at", "timestamp", ""),
    )
}


def error_of(text: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        parse_condition(text, CATALOGUE)
    return info.value


def test_unknown_column_is_named_with_a_suggestion_and_its_offset() -> None:
    err = error_of("clv > 3 and purchses >= 2")
    assert "unknown column 'purchses'" in err.message
    assert "did you mean 'purchases'?" in err.message
    assert err.offset == len("clv > 3 and ")


def test_string_compared_with_a_number_is_a_type_error_before_any_data() -> None:
    err = error_of("segment == 3")
    assert "type error" in err.message and "'segment'" in err.message
    assert err.offset == len("segment ")


def test_number_in_a_list_of_strings_is_a_type_error() -> None:
    err = error_of("segment in ['a', 2]")
    assert "type error" in err.message
    assert err.offset == len("segment in ['a', ")


def test_boolean_cannot_be_ordered() -> None:
    assert "booleans have no order" in error_of("consent_email < true").message


def test_a_number_column_alone_is_not_a_condition() -> None:
    assert "not a condition" in error_of("clv and consent_email").message


def test_comparing_with_null_must_use_is_null() -> None:
    assert "is null" in error_of("segment == null").message


@pytest.mark.parametrize(
    ("text", "offset"),
    [("clv >", 5), ("(clv > 1", 8), ("clv = 1", 4), ("clv > 1 segment", 8), ("'open", 0)],
)
def test_syntax_errors_carry_the_offset_of_the_problem(text: str, offset: int) -> None:
    assert error_of(text).offset == offset


def test_timestamp_compared_with_a_non_date_string_is_a_type_error() -> None:
    assert "ISO date" in error_of("last_purchase_at > 'yesterday'").message


def test_literals_become_bound_parameters_and_columns_come_from_the_catalogue() -> None:
    sql, params, columns = compile_condition(
        "segment in ['a', 'b'] and clv between 10 and 20.5 and not consent_email "
        "or purchases is not null",
        CATALOGUE,
    )
    assert list(params.values()) == ["a", "b", 10, 20.5]
    for literal in ("'a'", "'b'", "10", "20.5"):
        assert literal not in sql
    assert columns == ("segment", "clv", "consent_email", "purchases")
    assert '"segment"' in sql and '"consent_email"' in sql


def test_injection_attempt_is_just_a_literal_string() -> None:
    evil = "x' OR 1=1 --"
    sql, params, _ = compile_condition(f'segment == "{evil}"', CATALOGUE)
    assert "OR 1=1" not in sql
    assert list(params.values()) == [evil]
    con = duckdb.connect()
    con.execute("CREATE TABLE c (segment VARCHAR)")
    con.execute("INSERT INTO c VALUES ('x'), ('y'), (?)", [evil])
    rows = con.execute(f"SELECT segment FROM c WHERE {sql}", params).fetchall()
    assert rows == [(evil,)]


def test_compiled_condition_selects_the_right_rows_in_duckdb() -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE c AS SELECT * FROM (VALUES ('A', 'gold', 100.0, 3, true, "
        "TIMESTAMPTZ '2026-01-10 00:00:00+00'), ('B', 'gold', 5.0, 1, NULL, NULL), "
        "('C', 'silver', 50.0, 0, false, TIMESTAMPTZ '2025-06-01 00:00:00+00')) "
        "t(customer_id, segment, clv, purchases, consent_email, last_purchase_at)"
    )
    cases = {
        "segment == 'gold' and clv >= 50": ["A"],
        "consent_email": ["A"],
        "not consent_email": ["C"],
        "consent_email is null": ["B"],
        "segment not in ['gold'] or purchases between 1 and 1": ["B", "C"],
        "last_purchase_at >= '2026-01-01'": ["A"],
        "(clv > 10 or purchases > 2) and segment != 'x'": ["A", "C"],
        "clv > -1 and true": ["A", "B", "C"],
    }
    for text, expected in cases.items():
        sql, params, _ = compile_condition(text, CATALOGUE)
        rows = con.execute(f"SELECT customer_id FROM c WHERE {sql} ORDER BY 1", params).fetchall()
        assert [r[0] for r in rows] == expected, text


def test_keywords_are_case_insensitive_and_quotes_can_be_doubled() -> None:
    _, params, _ = compile_condition("segment == 'it''s' AND NOT consent_email", CATALOGUE)
    assert list(params.values()) == ["it's"]


def test_parameter_prefix_keeps_conditions_apart() -> None:
    sql, params, _ = compile_condition("clv > 1", CATALOGUE, param_prefix="r7_p")
    assert "$r7_p1" in sql and list(params) == ["r7_p1"]
