#!/usr/bin/env python3
"""`bagbase export --format parquet` read back by DuckDB, pyarrow and pandas: for every
table, the row count and per-column checksums (non-null counts; sums of numbers, times
and booleans; total string and byte lengths; the least MD5 of binary values) equal what
`bagbase sql` computes on the store.

usage: check_parquet_export.py BAGBASE_BIN   (needs `pip install duckdb pyarrow pandas`)
"""
import csv
import io
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

REPO = Path(__file__).resolve().parent.parent


def run(binary, store, *args):
    env = dict(os.environ, BAGBASE_STORE=str(store))
    out = subprocess.run([binary, *args], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"bagbase {' '.join(args)} failed:\n{out.stderr}")
    return out.stdout


def checks(schema, quote, ts, strlen, bytelen):
    """SQL expressions, one per checksum, for the table's top-level columns."""
    exprs = ["count(*)"]
    for f in schema:
        c = quote(f.name)
        exprs.append(f"count({c})")
        t = f.type
        if pa.types.is_integer(t) or pa.types.is_floating(t):
            exprs.append(f"sum(CAST({c} AS DOUBLE))")
        elif pa.types.is_boolean(t):
            exprs.append(f"sum(CASE WHEN {c} THEN 1 ELSE 0 END)")
        elif pa.types.is_timestamp(t):
            exprs.append(f"sum(CAST({ts(c)} AS DOUBLE))")
        elif pa.types.is_string(t) or pa.types.is_large_string(t):
            exprs.append(f"sum({strlen(c)})")
        elif pa.types.is_binary(t) or pa.types.is_large_binary(t):
            exprs.append(f"sum({bytelen(c)})")
            exprs.append(f"min(md5({c}))")
    return exprs


def close(a, b):
    if a in (None, "") and b in (None, ""):
        return True
    try:
        x, y = float(a), float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)
    return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-6)


def main(binary):
    failed = 0
    with tempfile.TemporaryDirectory() as d:
        store = Path(d) / "store"
        run(binary, store, "init")
        # camera.bag: images and point clouds held as references to the bag (blob
        # columns); the export must hold their bytes.
        run(binary, store, "ingest", str(REPO / "tests/data/gen/steps.bag"),
            str(REPO / "tests/data/ros1/rosbag.js/example.bag"),
            str(REPO / "tests/data/gen/camera.bag"))
        out = Path(d) / "out"
        run(binary, store, "export", "--ref", "main", "--format", "parquet", str(out))
        meta = json.loads((out / "_bagbase.json").read_text())
        assert meta["tables"], "no tables exported"
        con = duckdb.connect()
        for t in meta["tables"]:
            path = out / t["dir"]
            table = ds.dataset(path).to_table()
            frame = pd.read_parquet(path)
            if table.num_rows != t["rows"] or len(frame) != t["rows"]:
                print(f"FAIL {t['table']}: pyarrow {table.num_rows}, pandas {len(frame)}, manifest {t['rows']}")
                failed += 1
                continue
            schema = table.schema
            bb = checks(schema, lambda c: '"' + c.replace('"', '""') + '"',
                        lambda c: f"arrow_cast({c}, 'Int64')", lambda c: f"length({c})",
                        lambda c: f"length({c})")
            dk = checks(schema, lambda c: '"' + c.replace('"', '""') + '"',
                        lambda c: f"epoch_ns({c})", lambda c: f"length({c})",
                        lambda c: f"octet_length({c})")
            q = t["table"].replace('"', '""')
            got = list(csv.reader(io.StringIO(run(
                binary, store, "sql", "--format", "csv",
                f'SELECT {", ".join(bb)} FROM "{q}"'))))[1]
            glob = str(path / "*.parquet")
            want = con.execute(f"SELECT {', '.join(dk)} FROM read_parquet('{glob}')").fetchone()
            bad = [(e, a, b) for e, a, b in zip(dk, got, want) if not close(a, b)]
            if bad:
                print(f"FAIL {t['table']}: {bad[:3]}")
                failed += 1
            else:
                print(f"ok   {t['table']}: {t['rows']} rows, {len(dk)} checksums agree in DuckDB, pyarrow and pandas")
    print(f"{len(meta['tables']) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
