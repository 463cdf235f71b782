"""InfluxDB clients against `bagbase serve --http`: the official influxdb-client
package (v2 API, batching writes and a synchronous write), with the writer's
credentials as the token (`NAME:PASSWORD`, as InfluxDB 1.8 takes it), a wrong
password (401) and the read role (403). Then reads the points back over the
PostgreSQL wire with psycopg. Usage: influx_clients.py HTTP_PORT PG_PORT; exits 0
when every check holds.
"""
import sys

import psycopg
from influxdb_client import InfluxDBClient, Point, WriteOptions
from influxdb_client.client.exceptions import InfluxDBError
from influxdb_client.client.write_api import SYNCHRONOUS

http_port, pg_port = sys.argv[1], sys.argv[2]
url = f"http://127.0.0.1:{http_port}"

# Batching writer: 1,000 points in batches of 100, flushed on close.
with InfluxDBClient(url=url, token="writer:wpass", org="bagbase") as client:
    with client.write_api(write_options=WriteOptions(batch_size=100, flush_interval=200)) as w:
        for i in range(1000):
            w.write(
                bucket="main",
                record=Point("train")
                .tag("run_id", "r1" if i % 2 else "r2")
                .field("loss", 1.0 / (i + 1))
                .field("step", i)
                .time(1_700_000_000_000_000_000 + i * 1_000_000_000),
            )
    # Synchronous write with line protocol and second precision.
    sync = client.write_api(write_options=SYNCHRONOUS)
    sync.write(bucket="main", record="eval,run_id=r1 success=true 1700000000", write_precision="s")
    assert client.ping(), "ping"

    # A type conflict is refused (400) naming the line and field.
    try:
        sync.write(bucket="main", record="train,run_id=r9 step=1.5 1")
        raise SystemExit("a type conflict was accepted")
    except InfluxDBError as e:
        assert e.response.status == 400, e.response.status
        assert "field type conflict" in e.message and "line 1" in e.message, e.message

for token, status in (("writer:wrong", 401), ("reader:rpass", 403)):
    with InfluxDBClient(url=url, token=token, org="bagbase") as client:
        try:
            client.write_api(write_options=SYNCHRONOUS).write(bucket="main", record="x f=1 1")
            raise SystemExit(f"token {token!r} could write")
        except InfluxDBError as e:
            assert e.response.status == status, (token, e.response.status)

dsn = f"host=127.0.0.1 port={pg_port} dbname=main user=reader password=rpass sslmode=disable"
with psycopg.connect(dsn) as conn:
    rows = conn.execute("SELECT run_id, count(*), max(step) FROM train GROUP BY run_id ORDER BY run_id").fetchall()
    assert rows == [("r1", 500, 999), ("r2", 500, 998)], rows
    (ok,) = conn.execute("SELECT success FROM eval").fetchone()
    assert ok is True, ok
print("influxdb-client: ok")
