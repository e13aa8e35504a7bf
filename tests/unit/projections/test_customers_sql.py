"""The customers statement casts nothing: each definition already has its column's type."""

from __future__ import annotations

from radar.projections.customers import customer_rows_sql
from radar.projections.projector import connect_view, create_schema


def test_the_customers_statement_gives_each_column_the_type_of_the_table() -> None:
    con = connect_view(None)
    create_schema(con)
    table = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'customers' "
        "ORDER BY column_index"
    ).fetchall()
    rows = con.execute(f"DESCRIBE {customer_rows_sql()}").fetchall()
    assert [(r[0], r[1]) for r in rows] == table
