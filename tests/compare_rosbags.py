#!/usr/bin/env python3
"""Decoded values of bagbase agree with the Python `rosbags` library, field by field,
on every topic of every readable ROS1 bag in tests/data (all rows; the bags are small).

usage: compare_rosbags.py PATH/TO/bagbase
Exit 0 and a closing 'N passed, 0 failed' line when every topic agrees."""
import calendar
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rosbags.highlevel import AnyReader

BAGBASE = sys.argv[1]
DATA = Path(__file__).parent / "data"


def ns_of(text):
    """'2014-03-31T19:24:48.056065082' (UTC) -> integer nanoseconds."""
    date, _, frac = text.partition(".")
    secs = calendar.timegm(time.strptime(date, "%Y-%m-%dT%H:%M:%S"))
    return secs * 1_000_000_000 + int((frac + "000000000")[:9])


def plain(v):
    """A rosbags message value as plain Python: dicts, lists, ints, floats, hex bytes."""
    if hasattr(v, "__msgtype__"):
        if type(v).__name__.endswith(("__Time", "__Duration")):
            return v.sec * 1_000_000_000 + v.nanosec
        return {k: plain(getattr(v, k)) for k in v.__dataclass_fields__ if not k.isupper() and k != "__msgtype__"}
    if hasattr(v, "dtype"):
        if v.dtype.name == "uint8":
            return bytes(v).hex()
        return [plain(x) for x in v.tolist()]
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex()
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    return v


def same(a, b, path):
    if isinstance(a, float) or isinstance(b, float):
        a, b = float(a), float(b)
        if math.isnan(a) and math.isnan(b):
            return None
        if abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b)):
            return None
        return f"{path}: rosbags {a!r} != bagbase {b!r}"
    if isinstance(a, dict):
        if set(a) != set(b):
            return f"{path}: fields {sorted(a)} != {sorted(b)}"
        for k in a:
            d = same(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            d = same(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b else f"{path}: rosbags {a!r} != bagbase {b!r}"


def bagbase_rows(store, topic, fields):
    q = f'SELECT * FROM "{topic}" ORDER BY log_time'
    out = subprocess.run([BAGBASE, "--store", store, "sql", "--format", "json", q], check=True, capture_output=True, text=True).stdout
    rows = json.loads(out) if out.strip() else []
    conv = []
    for r in rows:
        t = ns_of(r.pop("log_time"))
        r.pop("file_id")
        r.pop("ordinal", None)
        conv.append((t, {k: fix(r.get(k), fields[k]) for k in fields}))
    return conv


def fix(v, like):
    """bagbase JSON -> the shape `plain` gives: timestamps as ns."""
    if isinstance(like, int) and isinstance(v, str):
        return ns_of(v)
    if isinstance(like, dict) and isinstance(v, dict):
        return {k: fix(v.get(k), like[k]) for k in like}
    if isinstance(like, list) and isinstance(v, list):
        return [fix(x, like[0]) if like else x for x in v]
    return v


def main():
    manifest = json.loads((DATA / "MANIFEST.json").read_text())
    passed = failed = 0
    for key, facts in sorted(manifest.items()):
        if not key.startswith("ros1/") or not facts["readable"] or not facts["topics"]:
            continue
        bag = DATA / key
        with tempfile.TemporaryDirectory() as tmp:
            store = f"{tmp}/s"
            subprocess.run([BAGBASE, "--store", store, "init"], check=True, capture_output=True)
            subprocess.run([BAGBASE, "--store", store, "ingest", str(bag)], check=True, capture_output=True)
            with AnyReader([bag]) as reader:
                for topic in sorted(facts["topics"]):
                    conns = [c for c in reader.connections if c.topic == topic]
                    ros = sorted(
                        ((t, plain(reader.deserialize(raw, c.msgtype))) for c, t, raw in reader.messages(connections=conns)),
                        key=lambda r: (r[0], json.dumps(r[1], sort_keys=True)),
                    )
                    ours = sorted(bagbase_rows(store, topic, ros[0][1]), key=lambda r: (r[0], json.dumps(r[1], sort_keys=True)))
                    diff = None if len(ros) == len(ours) else f"{len(ros)} rows != {len(ours)}"
                    for i, ((ta, a), (tb, b)) in enumerate(zip(ros, ours)):
                        if diff:
                            break
                        diff = f"row {i}: log_time {ta} != {tb}" if ta != tb else same(a, b, f"row {i}")
                    if diff:
                        failed += 1
                        print(f"FAIL {key} {topic}: {diff}")
                    else:
                        passed += 1
                        print(f"ok   {key} {topic}: {len(ros)} rows agree")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
