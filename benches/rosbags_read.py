#!/usr/bin/env python3
"""Peer for benches/rosbag1.rs: read and deserialize every message of a bag with the
Python `rosbags` library. Prints the message count."""
import sys
from pathlib import Path

from rosbags.highlevel import AnyReader

with AnyReader([Path(sys.argv[1])]) as reader:
    n = 0
    for conn, _t, raw in reader.messages():
        reader.deserialize(raw, conn.msgtype)
        n += 1
print(n)
