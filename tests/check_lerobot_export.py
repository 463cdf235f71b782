#!/usr/bin/env python3
"""`bagbase export --format lerobot` checked two ways:

1. Against the LeRobot v3.0 layout with pyarrow (always): meta/info.json, stats.json,
   tasks.parquet (a pandas frame indexed by task), episodes/chunk-000/file-000.parquet,
   data/chunk-*/file-*.parquet with the column types info.json's features promise; and
   every frame's values equal the store's steps (`bagbase sql`), images decoded from PNG
   equal to the stored pixels.
2. Loaded by the `lerobot` package's `LeRobotDataset` from the local path, when this
   interpreter has it (scripts/test runs this script with a venv that has it): length,
   episodes, fps, and every item's tensors equal the data files.

usage: check_lerobot_export.py BAGBASE_BIN   (needs pyarrow, numpy, pillow; lerobot optional)
"""
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
GEN = REPO / "tests/data/gen"

# (file, features: LeRobot name -> SQL expression on steps, or ("image", column))
CASES = [
    ("robomimic.hdf5", {
        "action": "actions",
        "observation.eef_pos": "obs_eef_pos",
        "next.reward": "rewards",
        "next.done": "dones",
        "observation.images.agentview_image": ("image", "obs_agentview_image"),
    }),
    ("aloha.hdf5", {
        "action": "action",
        "observation.qpos": "observations_qpos",
        "observation.qvel": "observations_qvel",
        "observation.images.cam_high": ("image", "observations_images_cam_high"),
    }),
    ("steps.bag", {
        "observation.joint_states.position": "joint_states['position']",
        "observation.images.camera_image": ("image", "camera_image"),
    }),
    # Images stored as references to the bag's bytes (blob columns): the PNGs must hold
    # the pixels themselves. Every numeric field of the IMU and of the cloud's header.
    ("camera.bag", {
        "observation.images.camera_image_raw": ("image", "camera_image_raw"),
        **{f"observation.imu_data.{v}.{a}": f"imu_data['{v}']['{a}']"
           for v, axes in [("orientation", "xyzw"), ("angular_velocity", "xyz"),
                           ("linear_acceleration", "xyz")] for a in axes},
        **{f"observation.imu_data.{v}_covariance": f"imu_data['{v}_covariance']"
           for v in ["orientation", "angular_velocity", "linear_acceleration"]},
        **{f"observation.points.{k}": f"points['{k}']"
           for k in ["height", "width", "is_bigendian", "point_step", "row_step", "is_dense"]},
    }),
]

DEFAULTS = {"timestamp": "float32", "frame_index": "int64", "episode_index": "int64",
            "index": "int64", "task_index": "int64"}


def run(binary, store, *args):
    env = dict(os.environ, BAGBASE_STORE=str(store))
    out = subprocess.run([binary, *args], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"bagbase {' '.join(args)} failed:\n{out.stderr}")
    return out.stdout


def arrow_type(ft):
    if ft["dtype"] == "image":
        return pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    scalar = {"float32": pa.float32(), "int64": pa.int64(), "bool": pa.bool_()}[ft["dtype"]]
    if ft["shape"] == [1]:
        return scalar
    return pa.list_(pa.field("element", scalar), ft["shape"][0])


def check_layout(root, want_features):
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0", info["codebase_version"]
    for k in ["total_episodes", "total_frames", "total_tasks", "chunks_size", "fps",
              "splits", "data_path", "features"]:
        assert k in info, f"info.json lacks {k}"
    feats = info["features"]
    for name, dtype in DEFAULTS.items():
        assert feats[name] == {"dtype": dtype, "shape": [1], "names": None}, (name, feats[name])
    assert set(feats) == set(want_features) | set(DEFAULTS), sorted(feats)
    files = sorted((root / "data").glob("chunk-*/file-*.parquet"))
    assert files, "no data files"
    data = pa.concat_tables(pq.read_table(f) for f in files)
    for name, ft in feats.items():
        assert data.schema.field(name).type == arrow_type(ft), (name, data.schema.field(name).type)
    assert data.num_rows == info["total_frames"]
    eps = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert len(eps) == info["total_episodes"] and info["splits"]["train"] == f"0:{len(eps)}"
    at = 0
    for i, e in enumerate(eps):
        assert e["episode_index"] == i and e["dataset_from_index"] == at
        assert e["dataset_to_index"] - e["dataset_from_index"] == e["length"]
        path = root / info["data_path"].format(chunk_index=e["data/chunk_index"],
                                               file_index=e["data/file_index"])
        assert path.exists(), path
        for name in feats:
            assert f"stats/{name}/mean" in e and e[f"stats/{name}/count"] == [e["length"]], name
        at += e["length"]
    assert at == data.num_rows
    import pandas as pd
    tasks = pd.read_parquet(root / "meta/tasks.parquet")
    assert list(tasks.index) == ["pick the cube"] and list(tasks["task_index"]) == [0], tasks
    stats = json.loads((root / "meta/stats.json").read_text())
    assert set(stats) == set(feats), sorted(stats)
    return info, data, eps


def pixels(img):
    """The stored image struct as an (h, w, 3) or (h, w, 1) array."""
    raw = np.frombuffer(bytes.fromhex(img["data"]), dtype=np.uint8)
    h, w, enc = img["height"], img["width"], img["encoding"]
    ch = {"rgb8": 3, "bgr8": 3, "mono8": 1, "rgba8": 4}[enc]
    step = img.get("step") or w * ch
    a = np.stack([raw[r * step:r * step + w * ch] for r in range(h)]).reshape(h, w, ch)
    if enc == "bgr8":
        a = a[:, :, ::-1]
    return a[:, :, :3]


def check_values(binary, store, data, eps, features):
    """Every frame of every feature equals the store's step, in episode order."""
    rows = data.to_pylist()
    n = 0
    for e in eps:
        exprs = []
        for name, src in features.items():
            col = src[1] if isinstance(src, tuple) else src
            exprs.append(f'{col} AS "{name}"')
        q = (f"SELECT step_index, {', '.join(exprs)} FROM steps "
             f"WHERE episode_id = '{e['episode_id']}' ORDER BY step_index")
        want = json.loads(run(binary, store, "sql", "--format", "json", q))
        got = rows[e["dataset_from_index"]:e["dataset_to_index"]]
        assert len(got) == len(want), (e["episode_id"], len(got), len(want))
        for g, w in zip(got, want):
            assert g["frame_index"] == w["step_index"]
            for name, src in features.items():
                if isinstance(src, tuple):
                    img = np.array(Image.open(io.BytesIO(g[name]["bytes"])))
                    exp = pixels(w[name])
                    if img.ndim == 2:
                        img = img[:, :, None]
                    assert np.array_equal(img, exp), (name, img, exp)
                else:
                    assert np.allclose(np.asarray(g[name], dtype=np.float64),
                                       np.asarray(w[name], dtype=np.float64), rtol=1e-6), (name, g[name], w[name])
            n += 1
    return n


def check_lerobot(root, info, data):
    try:
        from lerobot.datasets.lerobot_dataset import LeRobotDataset
    except ImportError as e:
        return f"LeRobotDataset not checked: the lerobot package is not installed here ({e})"
    import torch
    ds = LeRobotDataset("bagbase/export", root=root)
    assert len(ds) == info["total_frames"] and ds.num_episodes == info["total_episodes"]
    assert ds.fps == info["fps"]
    rows = data.to_pylist()
    for i in range(len(ds)):
        item = ds[i]
        assert item["task"] == "pick the cube"
        for name, ft in info["features"].items():
            v = item[name]
            if ft["dtype"] == "image":
                img = np.array(Image.open(io.BytesIO(rows[i][name]["bytes"])))
                if img.ndim == 2:
                    img = img[:, :, None]
                exp = torch.from_numpy(img).permute(2, 0, 1).float() / 255.0
                assert torch.allclose(v, exp), name
            else:
                exp = torch.tensor(rows[i][name])
                assert torch.allclose(v.double(), exp.double()), (name, v, exp)
    return f"LeRobotDataset loads it: {len(ds)} frames, {ds.num_episodes} episodes, every item equal"


def main(binary):
    failed = 0
    with tempfile.TemporaryDirectory() as d:
        store = Path(d) / "store"
        run(binary, store, "init")
        run(binary, store, "ingest", *[str(GEN / f) for f, _ in CASES])
        for f, features in CASES:
            out = Path(d) / f"lerobot-{f}"
            run(binary, store, "export", "--format", "lerobot", str(out), "--task", "pick the cube",
                "--where", f"file_id IN (SELECT file_id FROM files WHERE path LIKE '%{f}')")
            try:
                info, data, eps = check_layout(out, features)
                n = check_values(binary, store, data, eps, features)
                note = check_lerobot(out, info, data)
                print(f"ok   {f}: v3.0 layout, {n} frames of {len(features)} features equal the store; {note}")
            except AssertionError as e:
                print(f"FAIL {f}: {e!r}")
                failed += 1
    print(f"{len(CASES) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
