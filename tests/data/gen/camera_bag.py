#!/usr/bin/env python3
"""Writes tests/data/gen/camera.bag (uncompressed chunks) and camera-lz4.bag (the same
messages in lz4 chunks), the fixtures of sql/blobs.slt: payloads large enough to be
stored as references to the bag's bytes (blob columns, docs/format.md §4) next to
small ones that are not.

  /camera/image_raw   sensor_msgs/Image 64x48 rgb8 (9,216-byte data)  t = 1.0 … 1.7 s every 0.1 s
  /camera/compressed  sensor_msgs/CompressedImage, 200-byte data      t = 1.05 … 1.35 s every 0.1 s
  /points             sensor_msgs/PointCloud2, 5,000-byte data        t = 1.0, 1.3, 1.6 s
  /imu/data           sensor_msgs/Imu                                 t = 1.00 + 0.04 k (k < 20)

Pixel k of frame i is (7 i + k) mod 251; cloud byte k of cloud j is (3 j + k) mod 253.

usage: camera_bag.py OUT_DIR   (needs `pip install rosbags`)
"""
import sys
from pathlib import Path

import numpy as np
from rosbags.rosbag1 import Writer
from rosbags.typesys import Stores, get_typestore

S = 1_000_000_000


def ns(t):
    return int(round(t * S))


def messages(ts):
    Image = ts.types["sensor_msgs/msg/Image"]
    Compressed = ts.types["sensor_msgs/msg/CompressedImage"]
    Cloud = ts.types["sensor_msgs/msg/PointCloud2"]
    Field = ts.types["sensor_msgs/msg/PointField"]
    Imu = ts.types["sensor_msgs/msg/Imu"]
    Header = ts.types["std_msgs/msg/Header"]
    Time = ts.types["builtin_interfaces/msg/Time"]
    Quat = ts.types["geometry_msgs/msg/Quaternion"]
    Vec3 = ts.types["geometry_msgs/msg/Vector3"]

    def header(t, seq, frame):
        n = ns(t)
        return Header(seq=seq, stamp=Time(sec=n // S, nanosec=n % S), frame_id=frame)

    out = []
    for i in range(8):
        t = 1.0 + 0.1 * i
        data = ((np.arange(64 * 48 * 3) + 7 * i) % 251).astype(np.uint8)
        out.append((ns(t), "/camera/image_raw", "sensor_msgs/msg/Image",
                    Image(header(t, i, "cam"), 48, 64, "rgb8", 0, 192, data)))
    for i in range(4):
        t = 1.05 + 0.1 * i
        data = ((np.arange(200) + i) % 256).astype(np.uint8)
        out.append((ns(t), "/camera/compressed", "sensor_msgs/msg/CompressedImage",
                    Compressed(header(t, i, "cam"), "jpeg", data)))
    for j, t in enumerate([1.0, 1.3, 1.6]):
        data = ((np.arange(5000) + 3 * j) % 253).astype(np.uint8)
        fields = [Field("x", 0, 7, 1), Field("y", 4, 7, 1)]
        out.append((ns(t), "/points", "sensor_msgs/msg/PointCloud2",
                    Cloud(header(t, j, "lidar"), 1, 625, fields, False, 8, 5000, data, True)))
    for k in range(20):
        t = 1.0 + 0.04 * k
        cov = np.zeros(9, dtype=np.float64)
        out.append((ns(t), "/imu/data", "sensor_msgs/msg/Imu",
                    Imu(header(t, k, "imu"), Quat(0.0, 0.0, 0.0, 1.0), cov,
                        Vec3(0.0, 0.0, 0.01 * k), cov, Vec3(0.1 * k, 0.0, 9.81), cov)))
    out.sort(key=lambda m: m[0])
    return out


def write(path, ts, msgs, compression=None):
    path.unlink(missing_ok=True)
    w = Writer(path)
    if compression:
        w.set_compression(compression)
    with w:
        conns = {}
        for t, topic, typ, m in msgs:
            if topic not in conns:
                conns[topic] = w.add_connection(topic, typ, typestore=ts)
            w.write(conns[topic], t, ts.serialize_ros1(m, typ))


def main(out_dir):
    ts = get_typestore(Stores.ROS1_NOETIC)
    msgs = messages(ts)
    out = Path(out_dir)
    write(out / "camera.bag", ts, msgs)
    write(out / "camera-lz4.bag", ts, msgs, Writer.CompressionFormat.LZ4)


if __name__ == "__main__":
    main(sys.argv[1])
