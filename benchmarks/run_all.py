"""Run every benchmark in one go and collect the figures into benchmarks/results.json and results.md.

Each benchmark is its own script writing benchmarks/results/<name>.json (and .md); this runs them
one after the other (so they never compete for the cores), then merges their JSON and writes the
Markdown table for the README, with the goals of the faithfulness issue checked against the
numbers of this run. A script that is missing or fails is reported, and the rest still runs.

    nice -n 10 python benchmarks/run_all.py            # everything, ~40 min on 2 idle cores
    python benchmarks/run_all.py --quick               # fewer repeats / seeds, ~15 min
    python benchmarks/run_all.py --only faithfulness attribution_cost   # the others' last results are collected
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
RESULTS = HERE / "results"

# name: (arguments, extra arguments with --quick); every script takes --threads
SCRIPTS = {
    "cnn_cost": ([], ["--quantizers", "soft", "--repeats", "3"]),
    "rnn_cost": ([], ["--configs", "gru", "--repeats", "5"]),
    "attribution_cost": ([], ["--rounds", "1"]),
    "faithfulness": ([], ["--seeds", "3", "--steps", "25"]),
}


def run(name: str, args: list[str]) -> dict:
    script = HERE / f"{name}.py"
    if not script.is_file():
        return {"status": "skipped", "why": f"{script} does not exist"}
    cmd = [sys.executable, str(script), *args]
    print(f"\n=== {name}: {' '.join(cmd[1:])}", flush=True)
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=HERE.parent, capture_output=True, text=True)
    sys.stdout.write(proc.stdout[-4000:])
    minutes = round((time.perf_counter() - t) / 60, 1)
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        return {"status": "failed", "returncode": proc.returncode, "stderr_tail": proc.stderr[-2000:], "minutes": minutes}
    out = RESULTS / f"{name}.json"
    return {"status": "ok", "minutes": minutes, "command": " ".join(["python", f"benchmarks/{name}.py", *args]),
            "result": json.loads(out.read_text()) if out.is_file() else None}


def _written(out: Path) -> str:
    """When ``out`` was written: its last commit's date where git has one (a checkout or clone stamps every file with
    its own time, which then read as the run's), else the file's time."""
    try:
        iso = subprocess.run(["git", "log", "-1", "--format=%ct", "--", out.name], cwd=out.parent, capture_output=True,
                             text=True, timeout=20).stdout.strip()
        # `git diff --quiet` compares with the index: a staged (git add-ed) new result read as committed
        status = subprocess.run(["git", "status", "--porcelain", "--", out.name], cwd=out.parent,
                                capture_output=True, text=True, timeout=20)
        committed = bool(iso) and status.returncode == 0 and not status.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        committed = False
    stamp = float(iso) if committed else out.stat().st_mtime
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(stamp))


def collect(name: str) -> dict:
    """A benchmark not run now: its last results/<name>.json, marked as such (with the file's date)."""
    out = RESULTS / f"{name}.json"
    if not out.is_file():
        return {"status": "not run", "why": f"not in --only, and no {out.relative_to(HERE.parent)} from an earlier run"}
    when = _written(out)
    result = json.loads(out.read_text())
    command = (result.get("meta") or {}).get("command") or f"python benchmarks/{name}.py"  # as recorded, when it is
    return {"status": "collected", "why": f"not run now (--only); collected from an earlier run written {when}",
            "command": command, "result": result}


def goals(res: dict) -> list[str]:
    lines = []
    cost = (res.get("attribution_cost") or {}).get("result")
    if cost:
        r = cost["units"]["ratios"]
        codes = f" ({cost['units'].get('quantizer', 'soft')} codes)"
        lc = next((v for k, v in r.items() if k.startswith("Captum LayerConductance")), None)
        gx = r.get("Captum LayerGradientXActivation")
        if lc:
            ok = lc["over_neuroview"] >= 50
            lines.append(f"- NeuroView per-unit importance{codes} vs LayerConductance: {lc['over_neuroview']:.0f}x cheaper "
                         f"(goal ≥ 50x: {'met' if ok else 'NOT met'})")
        if gx:
            ok = gx["over_neuroview"] >= 4
            lines.append(f"- NeuroView per-unit importance{codes} vs LayerGradientXActivation (predicted class): "
                         f"{gx['over_neuroview']:.1f}x cheaper (goal ≥ 4x: {'met' if ok else 'NOT met'})")
        gx_all = r.get("Captum LayerGradientXActivation, all 10 classes")
        if gx_all:
            lines.append(f"- the same for all 10 classes, which one explain gives: {gx_all['over_neuroview']:.1f}x cheaper "
                         f"({'≥' if gx_all['over_neuroview'] >= 4 else '<'} 4x)")
        if not (lc or gx):
            lines.append("- per-unit cost goals: not checked (captum not installed)")
    faith = (res.get("faithfulness") or {}).get("result")
    if faith:
        for case, r in faith["cases"].items():
            src = "zoo checkpoint" if r["from_zoo"] else "stand-in trained here"
            for test, t in r["tests"].items():
                a = t["auc_accuracy"]
                verdict = ("yes, below every random seed" if t["neuroview_beats_every_random_seed"]
                           else "yes, below the random mean" if t["neuroview_beats_random"] else "NO")
                lines.append(f"- {r['architecture']} on {r['dataset']} ({src}), {test}: NeuroView order hurts accuracy "
                             f"faster than random? {verdict} (AUC {a['neuroview']:.3f} vs {a['random']:.3f} ± {a['random_std']:.3f})")
    return lines


def markdown(res: dict, meta: dict) -> str:
    out = [f"Produced by `{meta['command']}` ({meta['threads']} threads, torch {meta['torch']}, "
           f"load average at start {meta['load_average_start']}, {meta['minutes']} min).", ""]
    if not any(r.get("status") == "ok" for r in res.values()):
        out = [f"Collected by `{meta['command']}`: nothing run now; each section names the run it comes from.", ""]
    sections = [("attribution_cost", "Cost of importance: NeuroView vs post-hoc attribution"),
                ("cnn_cost", "NeuroView-CNN overheads (explain, training step, peak memory)"),
                ("rnn_cost", "NeuroView-RNN explain cost"),
                ("faithfulness", "Faithfulness: area under the accuracy curve as units / steps are removed (lower = more faithful)")]
    for name, title in sections:
        r = res.get(name, {})
        out.append(f"### {title}")
        out.append("")
        md = RESULTS / f"{name}.md"
        if r.get("status") in ("ok", "collected") and md.is_file():
            out.append(f"`{r['command']}`" + (f" ({r['why']})" if r["status"] == "collected" else ""))
            out.append("")
            out.append(md.read_text().strip())
        else:
            out.append(f"Not measured in this run: {r.get('status', 'not run')} {r.get('why', '') or r.get('stderr_tail', '')[-300:]}".strip())
        out.append("")
    out.append("### Goals of the faithfulness issue, checked on this run")
    out.append("")
    out += goals(res) or ["- nothing to check (the cost and faithfulness benchmarks did not run)"]
    return "\n".join(out) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats, seeds and curve points")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", nargs="*", choices=list(SCRIPTS), default=list(SCRIPTS),
                   help="run these; the others are collected (`--only` alone: collect every result, run nothing)")
    args = p.parse_args(argv)
    import torch  # noqa: PLC0415

    t = time.perf_counter()
    load = tuple(round(v, 1) for v in os.getloadavg())
    res = {}
    for name in SCRIPTS:
        if name in args.only:
            base, quick = SCRIPTS[name]
            res[name] = run(name, base + (quick if args.quick else []) + ["--threads", str(args.threads)])
        else:
            res[name] = collect(name)
    cmd = "python benchmarks/run_all.py" + (" --quick" if args.quick else "") + (
        f" --threads {args.threads}" if args.threads != 2 else "") + (
        f" --only {' '.join(args.only)}".rstrip() if args.only != list(SCRIPTS) else "")
    meta = {"command": cmd, "threads": args.threads, "torch": torch.__version__, "cpus": os.cpu_count(),
            "load_average_start": load, "load_average_end": tuple(round(v, 1) for v in os.getloadavg()),
            "minutes": round((time.perf_counter() - t) / 60, 1)}
    (HERE / "results.json").write_text(json.dumps({"meta": meta, **res}, indent=1))
    md = markdown(res, meta)
    (HERE / "results.md").write_text(md)
    print("\n" + md)


if __name__ == "__main__":
    main()
