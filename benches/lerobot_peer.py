#!/usr/bin/env python3
"""Peer for benches/lerobot.rs: the straightforward bag → LeRobot-style Parquet script a
team writes first. Reads every message with the Python `rosbags` library into pandas
DataFrames, aligns /joint_states positions and /imu/data linear acceleration to the
camera frames with `merge_asof(direction="nearest")`, encodes every frame as PNG
(Pillow, compress_level=1, the fastest) and writes one Parquet file with pyarrow.
Prints the number of frames.

usage: lerobot_peer.py BAG OUT_DIR
"""
import io
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image
from rosbags.highlevel import AnyReader

bag, out = Path(sys.argv[1]), Path(sys.argv[2])
cam, joints, imu = [], [], []
with AnyReader([bag]) as reader:
    for conn, t, raw in reader.messages():
        if conn.topic == "/camera/image_raw":
            m = reader.deserialize(raw, conn.msgtype)
            cam.append({"t": t, "h": m.height, "w": m.width, "data": m.data.tobytes()})
        elif conn.topic == "/joint_states":
            m = reader.deserialize(raw, conn.msgtype)
            joints.append({"t": t, "position": m.position.astype(np.float32)})
        elif conn.topic == "/imu/data":
            m = reader.deserialize(raw, conn.msgtype)
            a = m.linear_acceleration
            imu.append({"t": t, "ax": a.x, "ay": a.y, "az": a.z})
frames = pd.DataFrame(cam).sort_values("t")
frames = pd.merge_asof(frames, pd.DataFrame(joints).sort_values("t"), on="t", direction="nearest")
frames = pd.merge_asof(frames, pd.DataFrame(imu).sort_values("t"), on="t", direction="nearest")


def png(row):
    img = Image.frombytes("RGB", (row.w, row.h), row.data)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


frames["image"] = [png(r) for r in frames.itertuples()]
t0 = frames["t"].iloc[0]
table = pa.table({
    "observation.images.camera": pa.array([{"bytes": b, "path": None} for b in frames["image"]],
                                          pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
    "observation.state": pa.array(list(frames["position"]), pa.list_(pa.float32(), 7)),
    "observation.imu_acc.x": pa.array(frames["ax"], pa.float32()),
    "observation.imu_acc.y": pa.array(frames["ay"], pa.float32()),
    "observation.imu_acc.z": pa.array(frames["az"], pa.float32()),
    "timestamp": pa.array((frames["t"] - t0) / 1e9, pa.float32()),
    "frame_index": pa.array(np.arange(len(frames)), pa.int64()),
    "episode_index": pa.array(np.zeros(len(frames), dtype=np.int64)),
    "index": pa.array(np.arange(len(frames)), pa.int64()),
    "task_index": pa.array(np.zeros(len(frames), dtype=np.int64)),
})
(out / "data/chunk-000").mkdir(parents=True, exist_ok=True)
pq.write_table(table, out / "data/chunk-000/file-000.parquet")
print(len(frames))
