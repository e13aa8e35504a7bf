"""Helpers for the rules tests: an in-memory DuckDB ``customers`` table with every catalogue
column (typed from the catalogue), filled from a few given columns."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import duckdb
import polars as pl
import pytest

from radar.domain.columns import CUSTOMER_COLUMNS

SQL_TYPES = {
    "string": "VARCHAR",
    "number": "DOUBLE",
    "integer": "BIGINT",
    "boolean": "BOOLEAN",
    "timestamp": "TIMESTAMPTZ",
}

MakeCustomers = Callable[[Mapping[str, Any]], None]


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    yield connection
    connection.close()


@pytest.fixture
def make_customers(con: duckdb.DuckDBPyConnection) -> MakeCustomers:
    """Create ``customers`` with all catalogue columns; the given ones filled, others null."""

    def make(columns: Mapping[str, Any]) -> None:
        cols = ", ".join(f'"{c.name}" {SQL_TYPES[c.type]}' for c in CUSTOMER_COLUMNS.values())
        con.execute(f"CREATE OR REPLACE TABLE customers ({cols})")
        frame = pl.DataFrame(dict(columns))
        con.register("given_customers", frame)
        con.execute("INSERT INTO customers BY NAME SELECT * FROM given_customers")
        con.unregister("given_customers")

    return make
