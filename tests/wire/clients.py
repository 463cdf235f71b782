#!/usr/bin/env python3
"""Real PostgreSQL clients against `bagbase serve` (issue "PostgreSQL wire server").

Each client connects with SCRAM-SHA-256 over TLS (sslmode=require), lists tables,
runs a parameterized query and reads timestamp, bytea, list, struct and json columns.
Run by tests/it/server.rs with: HOST PORT USER PASSWORD. Prints one line per client
and exits 1 if any failed.
"""
import asyncio
import datetime
import json
import sys
import traceback

HOST, PORT, USER, PASSWORD = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
DSN = f"host={HOST} port={PORT} user={USER} password={PASSWORD} dbname=main sslmode=require"
URL = f"postgresql://{USER}:{PASSWORD}@{HOST}:{PORT}/main?sslmode=require"

# The query every client runs, with one parameter: the topic.
PARAM_SQL = (
    "SELECT log_time, data, size_bytes FROM messages WHERE topic = {p} "
    "ORDER BY log_time LIMIT 3"
)
NESTED_SQL = 'SELECT header.frame_id AS frame, level, msg FROM "/rosout" ORDER BY log_time LIMIT 1'
LIST_SQL = "SELECT parents FROM versions ORDER BY created_at DESC LIMIT 1"
# tests/it/server.rs inserts this experiment; params and metrics are json (OID 114).
JSON_SQL = "SELECT params, metrics FROM experiments WHERE experiment_id = 'e1'"
PARAMS = {"lr": 0.001, "layers": [64, 64]}
METRICS = {"loss": 0.5}


def check_json(params, metrics):
    """Drivers that decode json (psycopg, psycopg2, SQLAlchemy) give dicts."""
    assert params == PARAMS and metrics == METRICS, (params, metrics)


def check_rows(rows):
    assert len(rows) == 3, rows
    ts, data, size = rows[0]
    assert isinstance(ts, datetime.datetime), type(ts)
    assert ts.year >= 2010, ts
    assert isinstance(data, (bytes, bytearray, memoryview)), type(data)
    assert len(bytes(data)) == size, (len(bytes(data)), size)


def check_tables(names):
    for t in ("files", "topics", "messages", "/rosout"):
        assert t in names, (t, names)


def psycopg3():
    import psycopg

    with psycopg.connect(DSN) as conn:
        assert conn.info.pgconn.ssl_in_use
        cur = conn.cursor()
        cur.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
        check_tables({r[0] for r in cur.fetchall()})
        cur.execute(PARAM_SQL.format(p="%s"), ("/rosout",))
        check_rows(cur.fetchall())
        cur.execute(NESTED_SQL)
        frame, level, msg = cur.fetchone()
        assert isinstance(level, int) and isinstance(msg, str), (level, msg)
        cur.execute(LIST_SQL)
        cur.fetchone()
        # Extended protocol (a parameter), then simple protocol (none).
        cur.execute(JSON_SQL.replace("'e1'", "%s"), ("e1",))
        check_json(*cur.fetchone())
        cur.execute(JSON_SQL, prepare=False)
        assert cur.description[0].type_code == 114, cur.description
        check_json(*cur.fetchone())


def psycopg2_():
    import psycopg2

    conn = psycopg2.connect(DSN)
    cur = conn.cursor()
    cur.execute("SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = 'public'")
    check_tables({r[0] for r in cur.fetchall()})
    cur.execute(PARAM_SQL.format(p="%s"), ("/rosout",))
    check_rows(cur.fetchall())
    cur.execute(NESTED_SQL)
    cur.fetchone()
    cur.execute(JSON_SQL)
    assert cur.description[0].type_code == 114, cur.description
    check_json(*cur.fetchone())
    conn.close()


def asyncpg_():
    import asyncpg
    import ssl

    async def run():
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = await asyncpg.connect(
            host=HOST, port=PORT, user=USER, password=PASSWORD, database="main", ssl=ctx
        )
        rows = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
        check_tables({r[0] for r in rows})
        rows = await conn.fetch(PARAM_SQL.format(p="$1"), "/rosout")
        check_rows([tuple(r) for r in rows])
        await conn.fetchrow(NESTED_SQL)
        # asyncpg leaves json as text unless told otherwise: it must be that text.
        params, metrics = await conn.fetchrow(JSON_SQL)
        check_json(json.loads(params), json.loads(metrics))
        stmt = await conn.prepare(JSON_SQL)
        assert [a.type.name for a in stmt.get_attributes()] == ["json", "json"]
        await conn.close()

    asyncio.run(run())


def sqlalchemy_pandas():
    import pandas as pd
    import sqlalchemy as sa

    engine = sa.create_engine(URL.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        names = sa.inspect(conn).get_table_names()
        check_tables(set(names))
        df = pd.read_sql(
            sa.text(PARAM_SQL.format(p=":topic")), conn, params={"topic": "/rosout"}
        )
        assert len(df) == 3 and str(df["log_time"].dtype).startswith("datetime64"), df.dtypes
        df = pd.read_sql(sa.text(NESTED_SQL), conn)
        assert len(df) == 1
        df = pd.read_sql(sa.text(JSON_SQL), conn)
        check_json(df["params"][0], df["metrics"][0])


CLIENTS = [
    ("psycopg 3", psycopg3),
    ("psycopg2", psycopg2_),
    ("asyncpg", asyncpg_),
    ("SQLAlchemy + pandas", sqlalchemy_pandas),
]

failed = 0
for name, fn in CLIENTS:
    try:
        fn()
        print(f"ok   {name}")
    except Exception:  # noqa: BLE001 - report every client's failure
        failed += 1
        print(f"FAIL {name}")
        traceback.print_exc()
sys.exit(1 if failed else 0)
