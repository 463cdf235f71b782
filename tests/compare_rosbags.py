#!/usr/bin/env python3
"""Decoded values of bagbase agree with the Python readers, field by field, on every
topic of every readable ROS1 bag and of the generated ones (the `rosbags` library), every ROS 2 MCAP file (the
`mcap` + `mcap_ros2` readers) and every step column of the HDF5 files (`h5py`) in
tests/data (all rows; the files are small).

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

import h5py
from mcap_ros2.reader import read_ros2_messages
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


def plain_ros2(v):
    """An mcap_ros2 message value as plain Python. An empty message carries the one
    member ROS 2 gives it on the wire (bagbase shows it)."""
    if hasattr(v, "__slots__") and not isinstance(v, (bytes, str)):
        if not v.__slots__:
            return {"structure_needs_at_least_one_member": 0}
        return {k: plain_ros2(getattr(v, k)) for k in v.__slots__}
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex()
    if isinstance(v, (list, tuple)):
        return [plain_ros2(x) for x in v]
    return v


def same(a, b, path):
    if isinstance(a, list) and isinstance(b, str) and all(isinstance(x, int) for x in a):
        a = bytes(a).hex()  # char[] is a list of ints there, bytes here
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


def compare(key, topic, ref, store):
    """ref: [(log_time, plain value)] from the reference reader. Returns a difference or None."""
    order = lambda r: (r[0], json.dumps(r[1], sort_keys=True))
    ref = sorted(ref, key=order)
    ours = sorted(bagbase_rows(store, topic, ref[0][1]), key=order)
    if len(ref) != len(ours):
        return f"{len(ref)} rows != {len(ours)}"
    for i, ((ta, a), (tb, b)) in enumerate(zip(ref, ours)):
        diff = f"row {i}: log_time {ta} != {tb}" if ta != tb else same(a, b, f"row {i}")
        if diff:
            return diff
    return None


def mcap_files(manifest):
    """(key, {topic: [(log_time, value)]}) for every ROS 2 MCAP file, read by mcap_ros2."""
    keys = [key for key, facts in sorted(manifest.items())
            if key.startswith("mcap/") and facts.get("profile") == "ros2"]
    for key in keys + GEN_MCAP:
        topics = {}
        for m in read_ros2_messages(str(DATA / key)):
            topics.setdefault(m.channel.topic, []).append((m.log_time_ns, plain_ros2(m.ros_msg)))
        yield key, topics


# Generated bags (tests/data/gen): camera.bag holds images and point clouds stored as
# references to the bag's bytes (blob columns), camera-lz4.bag the same copied.
GEN_BAGS = ["gen/camera.bag", "gen/camera-lz4.bag", "gen/steps.bag"]
# camera.mcap: the same frames as ROS 2 messages in uncompressed MCAP chunks (blob
# columns too); steps.mcap: lz4 chunks.
GEN_MCAP = ["gen/camera.mcap", "gen/steps.mcap"]

HDF5_FILES = ["hdf5/robosuite-v1.0/door_panda_demo.hdf5", "hdf5/robosuite-v1.0/lift_panda_demo.hdf5",
              "hdf5/robosuite-v1.0/stack_panda_demo.hdf5", "hdf5/robosuite-v1.0/wipe_panda_demo.hdf5",
              "gen/robomimic.hdf5", "gen/aloha.hdf5"]


def hdf5_episodes(f):
    """[(column, dataset)] per episode, in bagbase's order and naming (docs/design.md)."""
    if "data" in f:
        demos = sorted(f["data"], key=lambda d: int(d.split("_")[1]))
        out = []
        for d in demos:
            g = f["data"][d]
            if "obs" in g:
                cols = [(f"obs_{k}", g["obs"][k]) for k in g["obs"]]
                cols += [(k, g[k]) for k in ("actions", "rewards", "dones") if k in g]
            else:
                cols = [(k, g[k]) for k in g if isinstance(g[k], h5py.Dataset)]
            out.append(cols)
        return out
    obs = f["observations"]
    cols = [(f"observations_{k}", obs[k]) for k in obs if isinstance(obs[k], h5py.Dataset)]
    cols += [(f"observations_images_{k}", obs["images"][k]) for k in obs.get("images", {})]
    return [cols + [("action", f["action"])]]


def h5_value(row):
    if row.ndim == 0:
        return row.item()
    if row.dtype.name == "uint8" and row.ndim >= 2:
        return row.tobytes().hex()
    return [x.item() for x in row.reshape(-1)]


def compare_hdf5(key):
    """Every step column of every episode against h5py; returns a difference or None."""
    with tempfile.TemporaryDirectory() as tmp, h5py.File(DATA / key, "r") as f:
        store = f"{tmp}/s"
        subprocess.run([BAGBASE, "--store", store, "init"], check=True, capture_output=True)
        subprocess.run([BAGBASE, "--store", store, "ingest", str(DATA / key)], check=True, capture_output=True)
        for k, cols in enumerate(hdf5_episodes(f)):
            q = (f"SELECT * FROM steps s JOIN episodes e USING (episode_id) WHERE e.episode_index = {k} "
                 "ORDER BY s.step_index")
            out = subprocess.run([BAGBASE, "--store", store, "sql", "--format", "json", q], check=True,
                                 capture_output=True, text=True).stdout
            rows = json.loads(out)
            for name, ds in cols:
                if len(rows) != ds.shape[0]:
                    return f"episode {k}: {len(rows)} steps != {ds.shape[0]} rows of {name}"
                for i, r in enumerate(rows):
                    got = r[name]
                    if isinstance(got, dict) and "data" in got:  # an image: height, width, pixels
                        if [got["height"], got["width"]] != list(ds.shape[1:3]):
                            return f"episode {k} step {i} {name}: image {got['height']}x{got['width']}, h5py {ds.shape}"
                        got = got["data"]
                    diff = same(h5_value(ds[i]), got, f"episode {k} step {i} {name}")
                    if diff:
                        return diff
    return None


def main():
    manifest = json.loads((DATA / "MANIFEST.json").read_text())
    passed = failed = 0
    for key in HDF5_FILES:
        diff = compare_hdf5(key)
        if diff:
            failed += 1
            print(f"FAIL {key}: {diff}")
        else:
            passed += 1
            print(f"ok   {key}: every step column agrees with h5py")
    for key, topics in mcap_files(manifest):
        with tempfile.TemporaryDirectory() as tmp:
            store = f"{tmp}/s"
            subprocess.run([BAGBASE, "--store", store, "init"], check=True, capture_output=True)
            subprocess.run([BAGBASE, "--store", store, "ingest", str(DATA / key)], check=True, capture_output=True)
            for topic, ref in sorted(topics.items()):
                diff = compare(key, topic, ref, store)
                if diff:
                    failed += 1
                    print(f"FAIL {key} {topic}: {diff}")
                else:
                    passed += 1
                    print(f"ok   {key} {topic}: {len(ref)} rows agree")
    ros1 = [key for key, facts in sorted(manifest.items())
            if key.startswith("ros1/") and facts["readable"] and facts["topics"]]
    for key in ros1 + GEN_BAGS:
        bag = DATA / key
        with tempfile.TemporaryDirectory() as tmp:
            store = f"{tmp}/s"
            subprocess.run([BAGBASE, "--store", store, "init"], check=True, capture_output=True)
            subprocess.run([BAGBASE, "--store", store, "ingest", str(bag)], check=True, capture_output=True)
            with AnyReader([bag]) as reader:
                for topic in sorted({c.topic for c in reader.connections}):
                    conns = [c for c in reader.connections if c.topic == topic]
                    ros = [(t, plain(reader.deserialize(raw, c.msgtype))) for c, t, raw in reader.messages(connections=conns)]
                    diff = compare(key, topic, ros, store)
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
