"""Runs Clyra's Snowflake SQL texts on fakesnow (Snowflake SQL on DuckDB) to check their shape.

Used by crates/clyra-warehouse/tests/snowflake_fakesnow.rs; install with `make venv`.

    python snowflake_fakesnow.py check     # the modules import; prints their versions
    python snowflake_fakesnow.py run       # stdin: [{"name", "sql", "bindings": [[type, value]]}]

`run` prints one JSON object: per statement the column names, the rows (as strings), the query id
(`cursor.sfqid`) and any error, plus the context functions fakesnow lacks and this script had to
define as DuckDB macros returning fixed values (fakesnow 0.12.1 has no CURRENT_ACCOUNT,
CURRENT_REGION, CURRENT_SESSION or CURRENT_WAREHOUSE). fakesnow has no
SNOWFLAKE.ACCOUNT_USAGE.QUERY_HISTORY either: the script creates a table of that name with the
documented column names and types (the subset Clyra reads, plus QUERY_TEXT) and three rows.
"""

import json
import sys
import warnings

warnings.filterwarnings("ignore")

# Values the macros return, for functions fakesnow lacks.
MACROS = {
    "CURRENT_ACCOUNT": "'XY12345'",
    "CURRENT_REGION": "'AWS_US_EAST_2'",
    "CURRENT_SESSION": "'10923847562'",
    "CURRENT_WAREHOUSE": "'TRANSFORM_WH'",
}

QUERY_HISTORY_DDL = """CREATE TABLE SNOWFLAKE.ACCOUNT_USAGE.QUERY_HISTORY (
  QUERY_ID VARCHAR, QUERY_TEXT VARCHAR, DATABASE_NAME VARCHAR, SCHEMA_NAME VARCHAR,
  QUERY_TYPE VARCHAR, SESSION_ID NUMBER, USER_NAME VARCHAR, ROLE_NAME VARCHAR,
  WAREHOUSE_NAME VARCHAR, EXECUTION_STATUS VARCHAR, ERROR_CODE VARCHAR,
  START_TIME TIMESTAMP_LTZ, END_TIME TIMESTAMP_LTZ, ROWS_PRODUCED NUMBER, ROWS_INSERTED NUMBER,
  ROWS_UPDATED NUMBER, ROWS_DELETED NUMBER, QUERY_HASH VARCHAR, QUERY_PARAMETERIZED_HASH VARCHAR)"""

QUERY_HISTORY_ROWS = [
    # id, start, end, rows inserted
    ("01bd2c3e-0001-a1b2-0000-00a1b2c3d001", "2026-01-01 10:00:00.1+00", "2026-01-01 10:00:02.35+00", 120),
    ("01bd2c3e-0001-a1b2-0000-00a1b2c3d002", "2026-01-01 10:01:40+00", "2026-01-01 10:01:40.9+00", 0),
    # Started before the lower bound the test binds: must not come back.
    ("01bd2c3e-0001-a1b2-0000-00a1b2c3d003", "2025-06-01 00:00:00+00", "2025-06-01 00:00:01+00", 5),
]


def check():
    from importlib.metadata import version

    import fakesnow  # noqa: F401
    import snowflake.connector  # noqa: F401

    print(json.dumps({p: version(p) for p in ("fakesnow", "snowflake-connector-python", "duckdb")}))


def text(v):
    if v is None:
        return None
    return str(v)


def run():
    import fakesnow
    import snowflake.connector

    snowflake.connector.paramstyle = "qmark"
    statements = json.load(sys.stdin)
    out = {"macros": [], "results": []}
    with fakesnow.patch():
        conn = snowflake.connector.connect(database="DB1", schema="S1")
        cur = conn.cursor()
        duck = conn._duck_conn
        for name, value in MACROS.items():
            try:
                cur.execute(f"SELECT {name}()")
            except Exception:
                duck.execute(f"CREATE MACRO {name.lower()}() AS {value}")
                out["macros"].append(name)
        cur.execute("CREATE DATABASE SNOWFLAKE")
        cur.execute("CREATE SCHEMA SNOWFLAKE.ACCOUNT_USAGE")
        cur.execute(QUERY_HISTORY_DDL)
        for qid, start, end, ins in QUERY_HISTORY_ROWS:
            cur.execute(
                "INSERT INTO SNOWFLAKE.ACCOUNT_USAGE.QUERY_HISTORY (QUERY_ID, QUERY_TEXT, SESSION_ID,"
                " USER_NAME, ROLE_NAME, WAREHOUSE_NAME, EXECUTION_STATUS, START_TIME, END_TIME,"
                " ROWS_PRODUCED, ROWS_INSERTED, ROWS_UPDATED, ROWS_DELETED, QUERY_HASH)"
                " VALUES (?, 'secret literal 42', 10923847562, 'CI_BOT', 'TRANSFORMER', 'TRANSFORM_WH',"
                " 'SUCCESS', ?, ?, 0, ?, 0, 0, 'h')",
                [qid, start, end, ins],
            )
        cur.execute("USE SCHEMA DB1.S1")
        for s in statements:
            params = [int(v) if t == "FIXED" else v for t, v in s.get("bindings", [])]
            r = {"name": s["name"]}
            try:
                cur.execute(s["sql"], params or None)
                r["columns"] = [d.name for d in cur.description]
                r["rows"] = [[text(v) for v in row] for row in cur.fetchall()]
                r["query_id"] = cur.sfqid
            except Exception as e:  # reported, judged by the Rust test
                r["error"] = f"{type(e).__name__}: {e}"
            out["results"].append(r)
    print(json.dumps(out))


if __name__ == "__main__":
    {"check": check, "run": run}[sys.argv[1]]()
