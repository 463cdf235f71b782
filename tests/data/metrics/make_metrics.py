"""Writes metrics.lp: deterministic training and fleet metrics for sql/metrics.slt.

run_metrics: 2 runs (r1, r2) x 2 lanes (a, b) x 6 evaluations, 10 s apart from
2023-11-14T22:13:20Z; reward = (k+1) * (1 for r1, 2 for r2) + 0.5 on lane b;
success alternates (lane b starts false); loss = 1/(k+1); step = 100 k.
robot: 5 points of telemetry 1 s apart from t = 1 s, tagged with the episode id
that tests/data/gen/steps.bag gets when ingested as data/a.bag.
Timestamps are nanoseconds. Run: python3 make_metrics.py
"""

lines = ["# run_metrics and robot telemetry: made by make_metrics.py"]
t0 = 1_700_000_000 * 10**9
for run in ("r1", "r2"):
    for lane in ("a", "b"):
        for k in range(6):
            reward = (k + 1) * (1.0 if run == "r1" else 2.0) + (0.5 if lane == "b" else 0.0)
            success = "true" if (k + (lane == "b")) % 2 == 0 else "false"
            loss = round(1.0 / (k + 1), 4)
            lines.append(
                f"run_metrics,run_id={run},lane={lane} "
                f"loss={loss},reward={reward},success={success},step={k * 100}i {t0 + k * 10 * 10**9}"
            )
for i in range(5):
    lines.append(
        f"robot,robot_id=bot7,episode_id=9396d1f73d072801-0 "
        f"temperature={40 + i * 0.5},speed={0.1 * i:.1f} {(1 + i) * 10**9}"
    )
with open("metrics.lp", "w") as f:
    f.write("\n".join(lines) + "\n")
