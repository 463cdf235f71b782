#!/usr/bin/env python3
"""Writes the small HDF5 fixtures of sql/hdf5.slt into tests/data/gen/:

  robomimic.hdf5   data/demo_0, demo_1, demo_10 (3, 4, 2 steps): obs/eef_pos (N,3) float64,
                   obs/agentview_image (N,2,2,3) uint8, actions (N,2) float64, rewards (N,),
                   dones (N,) with demo_1 ending in done = 1. Values follow from the
                   step: eef_pos[i] = [i, 10 i, 100 i] + demo, actions[i] = [i, -i].
  aloha.hdf5       observations/qpos (5,4), observations/qvel (5,4),
                   observations/images/cam_high (5,2,2,3) uint8, action (5,4).
  mismatched.hdf5  data/demo_1/states (10,3) and actions (9,2): lengths disagree.
  unknown.hdf5     a layout bagbase does not know (sensors/imu (8,6)).

usage: make_hdf5.py OUTDIR   (needs `pip install h5py numpy`)
"""
import sys
from pathlib import Path

import h5py
import numpy as np


def main(out):
    out = Path(out)
    with h5py.File(out / "robomimic.hdf5", "w") as f:
        data = f.create_group("data")
        for demo, n in [(0, 3), (1, 4), (10, 2)]:
            g = data.create_group(f"demo_{demo}")
            i = np.arange(n, dtype=np.float64)
            g["obs/eef_pos"] = np.stack([i, 10 * i, 100 * i], axis=1) + demo
            g["obs/agentview_image"] = (np.arange(n * 12).reshape(n, 2, 2, 3) % 256).astype(np.uint8)
            g["actions"] = np.stack([i, -i], axis=1)
            g["rewards"] = (i == n - 1).astype(np.float64)
            dones = np.zeros(n, dtype=np.int64)
            if demo == 1:
                dones[-1] = 1
            g["dones"] = dones
    with h5py.File(out / "aloha.hdf5", "w") as f:
        q = np.arange(20, dtype=np.float64).reshape(5, 4)
        f["observations/qpos"] = q
        f["observations/qvel"] = -q
        f["observations/images/cam_high"] = np.full((5, 2, 2, 3), 7, dtype=np.uint8)
        f["action"] = q * 2
    with h5py.File(out / "mismatched.hdf5", "w") as f:
        f["data/demo_1/states"] = np.zeros((10, 3))
        f["data/demo_1/actions"] = np.zeros((9, 2))
    with h5py.File(out / "unknown.hdf5", "w") as f:
        f["sensors/imu"] = np.zeros((8, 6))


if __name__ == "__main__":
    main(sys.argv[1])
