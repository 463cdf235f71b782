#!/usr/bin/env python3
"""Writes tests/data/gen/steps.mcap, the fixture of sql/mcap.slt: the recording of
steps.bag (same topics, timestamps and values; see steps_bag.py) as ROS 2 messages in
CDR, in an MCAP file with lz4-compressed chunks of about 1 KiB, so that it has many
chunks (a cut-short copy keeps the complete ones) and exercises lz4 and CDR alignment.

usage: steps_mcap.py OUT   (needs `pip install mcap mcap-ros2-support lz4`)
"""
import sys

from mcap.writer import CompressionType
from mcap_ros2.writer import Writer

S = 1_000_000_000
SEP = "=" * 80 + "\n"
TIME = "MSG: builtin_interfaces/Time\nint32 sec\nuint32 nanosec\n"
HEADER = "MSG: std_msgs/Header\nbuiltin_interfaces/Time stamp\nstring frame_id\n"
IMAGE = (
    "std_msgs/Header header\nuint32 height\nuint32 width\nstring encoding\n"
    "uint8 is_bigendian\nuint32 step\nuint8[] data\n" + SEP + HEADER + SEP + TIME
)
JOINTS = (
    "std_msgs/Header header\nstring[] name\nfloat64[] position\nfloat64[] velocity\n"
    "float64[] effort\n" + SEP + HEADER + SEP + TIME
)


def ns(t):
    return int(round(t * S))


def header(t, frame):
    n = ns(t)
    return {"stamp": {"sec": n // S, "nanosec": n % S}, "frame_id": frame}


def main(out):
    msgs = []
    frames = [1.0 + 0.1 * k for k in range(10)] + [5.0 + 0.1 * k for k in range(5)]
    for i, t in enumerate(frames):
        data = bytes((j + i) % 256 for j in range(12))
        m = {"header": header(t, "cam"), "height": 2, "width": 2, "encoding": "rgb8",
             "is_bigendian": 0, "step": 6, "data": data}
        msgs.append((ns(t), "/camera/image", "image", m))
    joints = [(1.0 + 0.03 * k, k) for k in range(50)] + [(5.0 + 0.03 * k, k) for k in range(15)]
    for t, k in joints:
        m = {"header": header(t, "base"), "name": ["a", "b"], "position": [float(k), -float(k)],
             "velocity": [], "effort": []}
        msgs.append((ns(t), "/joint_states", "joints", m))
    for t, r in [(1.05, 0.5), (1.42, 1.0), (5.2, 2.0)]:
        msgs.append((ns(t), "/reward", "float64", {"data": r}))
    msgs.append((ns(5.45), "/done", "bool", {"data": True}))
    msgs.sort(key=lambda m: m[0])

    with open(out, "wb") as f:
        w = Writer(f, chunk_size=1024, compression=CompressionType.LZ4)
        schemas = {
            "image": w.register_msgdef("sensor_msgs/msg/Image", IMAGE),
            "joints": w.register_msgdef("sensor_msgs/msg/JointState", JOINTS),
            "float64": w.register_msgdef("std_msgs/msg/Float64", "float64 data\n"),
            "bool": w.register_msgdef("std_msgs/msg/Bool", "bool data\n"),
        }
        for t, topic, kind, m in msgs:
            w.write_message(topic, schemas[kind], m, log_time=t, publish_time=t)
        w.finish()


if __name__ == "__main__":
    main(sys.argv[1])
