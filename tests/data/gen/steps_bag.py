#!/usr/bin/env python3
"""Writes tests/data/gen/steps.bag, the fixture of sql/steps.slt: a tiny ROS1 bag whose
timestamps are chosen so that alignment by nearest and previous, tolerance misses,
episode splits by gap and the terminal flag all have known answers.

  /camera/image  sensor_msgs/Image 2x2 rgb8   t = 1.0 … 1.9 s every 0.1 s, 5.0 … 5.4 s
  /joint_states  sensor_msgs/JointState       t = 1.00 + 0.03 k (k < 50), 5.00 + 0.03 k (k < 15)
                                              position = [k, -k]
  /reward        std_msgs/Float64             (1.05, 0.5) (1.42, 1.0) (5.2, 2.0)
  /done          std_msgs/Bool                (5.45, true)

usage: steps_bag.py OUT   (needs `pip install rosbags`)
"""
import sys
from pathlib import Path

import numpy as np
from rosbags.rosbag1 import Writer
from rosbags.typesys import Stores, get_typestore

S = 1_000_000_000


def ns(t):
    return int(round(t * S))


def main(out):
    ts = get_typestore(Stores.ROS1_NOETIC)
    Image = ts.types["sensor_msgs/msg/Image"]
    JointState = ts.types["sensor_msgs/msg/JointState"]
    Header = ts.types["std_msgs/msg/Header"]
    Time = ts.types["builtin_interfaces/msg/Time"]
    Float64 = ts.types["std_msgs/msg/Float64"]
    Bool = ts.types["std_msgs/msg/Bool"]

    def header(t, seq, frame):
        n = ns(t)
        return Header(seq=seq, stamp=Time(sec=n // S, nanosec=n % S), frame_id=frame)

    msgs = []
    frames = [1.0 + 0.1 * k for k in range(10)] + [5.0 + 0.1 * k for k in range(5)]
    for i, t in enumerate(frames):
        data = np.arange(12, dtype=np.uint8) + i
        m = Image(header(t, i, "cam"), 2, 2, "rgb8", 0, 6, data)
        msgs.append((ns(t), "/camera/image", "sensor_msgs/msg/Image", m))
    joints = [(1.0 + 0.03 * k, k) for k in range(50)] + [(5.0 + 0.03 * k, k) for k in range(15)]
    for i, (t, k) in enumerate(joints):
        m = JointState(
            header(t, i, "base"),
            ["a", "b"],
            np.array([float(k), -float(k)]),
            np.array([], dtype=np.float64),
            np.array([], dtype=np.float64),
        )
        msgs.append((ns(t), "/joint_states", "sensor_msgs/msg/JointState", m))
    for t, r in [(1.05, 0.5), (1.42, 1.0), (5.2, 2.0)]:
        msgs.append((ns(t), "/reward", "std_msgs/msg/Float64", Float64(r)))
    msgs.append((ns(5.45), "/done", "std_msgs/msg/Bool", Bool(True)))
    msgs.sort(key=lambda m: m[0])

    path = Path(out)
    path.unlink(missing_ok=True)
    with Writer(path) as w:
        conns = {}
        for t, topic, typ, m in msgs:
            if topic not in conns:
                conns[topic] = w.add_connection(topic, typ, typestore=ts)
            w.write(conns[topic], t, ts.serialize_ros1(m, typ))


if __name__ == "__main__":
    main(sys.argv[1])
