#!/usr/bin/env python3
"""Plots version_diff time against the fraction of episodes changed, for bagbase and
PostgreSQL 15's two plans, from target/bench-diff.csv (written by `cargo bench --bench
diff`) into docs/diff-time.png. Installs matplotlib if it is missing.

usage: python3 benches/plot_diff.py [CSV] [PNG]"""
import csv
import subprocess
import sys

try:
    import matplotlib
except ImportError:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "matplotlib"])
    import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

src = sys.argv[1] if len(sys.argv) > 1 else "target/bench-diff.csv"
out = sys.argv[2] if len(sys.argv) > 2 else "docs/diff-time.png"
rows = [r for r in csv.DictReader(open(src)) if float(r["fraction"]) > 0]
rows.sort(key=lambda r: float(r["fraction"]))
x = [float(r["fraction"]) * 100 for r in rows]
fig, ax = plt.subplots(figsize=(6.4, 4.2))
for col, label, style in [
    ("bagbase_s", "bagbase version_diff", "o-"),
    ("pg_join_s", "PostgreSQL 15: FULL JOIN on key + row hash", "s--"),
    ("pg_notin_s", "PostgreSQL 15: row_hash NOT IN", "^--"),
]:
    ax.plot(x, [float(r[col]) for r in rows], style, label=label)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("episodes changed (% added = % removed = % re-processed)")
ax.set_ylabel("time (s)")
ax.set_title("Diff of two versions of a 10 M-row steps table")
ax.grid(True, which="both", alpha=0.3)
ax.legend()
fig.tight_layout()
fig.savefig(out, dpi=110)
print(out)
