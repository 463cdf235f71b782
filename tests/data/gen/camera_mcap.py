#!/usr/bin/env python3
"""Writes tests/data/gen/camera.mcap, a fixture of sql/blobs.slt: the camera frames and
point clouds of camera.bag (camera_bag.py: same timestamps and bytes) as ROS 2 CDR
messages in an MCAP file with uncompressed chunks of about 32 KiB, so their payloads
lie in the file as is and are stored as references to it (blob columns).

usage: camera_mcap.py OUT   (needs `pip install mcap mcap-ros2-support`)
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


def ns(t):
    return int(round(t * S))


def header(t, frame):
    n = ns(t)
    return {"stamp": {"sec": n // S, "nanosec": n % S}, "frame_id": frame}


def main(out):
    msgs = []
    for i in range(8):
        t = 1.0 + 0.1 * i
        data = bytes((k + 7 * i) % 251 for k in range(64 * 48 * 3))
        m = {"header": header(t, "cam"), "height": 48, "width": 64, "encoding": "rgb8",
             "is_bigendian": 0, "step": 192, "data": data}
        msgs.append((ns(t), "/camera/image_raw", m))
    with open(out, "wb") as f:
        w = Writer(f, chunk_size=32 * 1024, compression=CompressionType.NONE)
        image = w.register_msgdef("sensor_msgs/msg/Image", IMAGE)
        for t, topic, m in msgs:
            w.write_message(topic, image, m, log_time=t, publish_time=t)
        w.finish()


if __name__ == "__main__":
    main(sys.argv[1])
