#!/usr/bin/env python3
"""Query cancel against `bagbase serve` (issue "PostgreSQL wire server", acceptance 3):
a long query is cancelled after 1 s through psycopg 3 (extended protocol) and
psycopg2 (simple protocol); each gets SQLSTATE 57014 well before the query could
finish, and the connection stays usable. Run by tests/it/server.rs: HOST PORT USER PASSWORD.
"""
import sys
import threading
import time

HOST, PORT, USER, PASSWORD = sys.argv[1:5]
DSN = f"host={HOST} port={PORT} user={USER} password={PASSWORD} dbname=main sslmode=require"
# Minutes of work for DataFusion: cancelled, it must stop within seconds.
LONG = "SELECT count(*) FROM generate_series(1, 20000000000) AS t(v) WHERE v % 7 = 3"


def psycopg3():
    import psycopg

    with psycopg.connect(DSN, autocommit=True) as conn:
        threading.Timer(1.0, conn.cancel).start()
        start = time.time()
        try:
            conn.execute(LONG).fetchall()
            raise AssertionError("the query was not cancelled")
        except psycopg.errors.QueryCanceled as e:
            assert e.sqlstate == "57014", e.sqlstate
            assert "canceling statement due to user request" in str(e), str(e)
        took = time.time() - start
        assert took < 10, took
        assert conn.execute("SELECT 1").fetchone() == (1,)
        return took


def psycopg2_():
    import psycopg2
    import psycopg2.errors

    conn = psycopg2.connect(DSN)
    conn.autocommit = True
    cur = conn.cursor()
    threading.Timer(1.0, conn.cancel).start()
    start = time.time()
    try:
        cur.execute(LONG)
        raise AssertionError("the query was not cancelled")
    except psycopg2.errors.QueryCanceled as e:
        assert e.pgcode == "57014", e.pgcode
    took = time.time() - start
    assert took < 10, took
    cur.execute("SELECT 1")
    assert cur.fetchone() == (1,)
    conn.close()
    return took


for name, f in (("psycopg 3", psycopg3), ("psycopg2", psycopg2_)):
    print(f"{name}: cancelled after {f():.2f} s")
