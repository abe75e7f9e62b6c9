"""Which point ``nv.sparsify`` keeps under a readability budget, chosen on held-out data.

With ``max_k90`` (and ``max_k90_steps``) only the path's points whose training decisions meet the
budget count. Among them ``sparsify`` kept the sparsest that passes its accuracy rule (within
``tolerance`` of the reference and keeping ``deviance`` of the path's drop in validation loss).
Cross-validated accuracy on the training split saturates (the backbone has seen those samples), so
the sparsest point often passes that rule with 3 to 5 units while a denser one still inside the
budget would generalize better. This study judges the candidate rules on samples no network of it
has seen, and never reads a test split. It walks the same networks as ``sparsify_choice.py`` (each
zoo recipe with a split held out), 5-fold cross-validation on the training part, the zoo's budget
(CNNs: k90 <= 10 units; RNNs: <= 50 hidden states and <= 10 steps), and for each point records its
held-out accuracy. Rules, each choosing among the points within the budget:

- ``sparsest``: the rule ``sparsify`` used (fewest groups, then units, among those within 1 point
  of the cross-validated reference and keeping 0.99 of the path's drop in loss; else the most accurate);
- ``most accurate``: the highest cross-validated accuracy, ties to the lower cross-validated loss;
- ``lowest loss``: the lowest cross-validated cross-entropy.

Each with the relaxed refit's ridge ``relaxed`` in :data:`RELAXED`. A rule is judged by how many
runs' (entry and training seed) held-out accuracy is within 1 point of the dense network's; ties go
to fewer units. The same walks also judge ``relaxed`` without a budget (``no budget``: ``sparsify``'s
rule with every point of the path), kept apart, since ``relaxed`` is one default for both.

``--distill T ...`` walks the same networks with ``sparsify(..., distill=T)``: the path fits the dense
network's class probabilities on the training part at temperature ``T`` in place of the labels
(``relaxed`` at ``sparsify``'s default). The rule, written before its runs: a temperature replaces
the labels as the default only if, under the budget and with ``sparsify``'s own point rule
(``sparsest``), more runs are within 1 point of the dense network on the held-out split than with
the labels, and the mean gap is no worse; the most such runs wins, ties to the lower temperature.
Reported beside it, since 8 to 16 held-out series make accuracy coarse: each point's agreement
with the dense network's held-out decisions and its held-out cross-entropy.


    nice -n 10 python benchmarks/sparsify_budget_choice.py --seeds 0 1 2   # walk every entry (cached one by one)
    nice -n 10 python benchmarks/sparsify_budget_choice.py --seeds 0 1 2 --relaxed 0.1 --distill 1 4 16
    python benchmarks/sparsify_budget_choice.py --report       # judge the rules from the cache (prints only)

The .md of a run that walked is written as ``sparsify_choice.py`` writes its own (``write_report``: the file's note
stays, a line names the new runs); ``--report`` leaves it as it is.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "sparsify_budget_choice.json"
REPORT = RESULTS.with_suffix(".md")
DISTILL = RESULTS.with_name("sparsify_distill_choice.json")  # --distill: its own networks and labels' walks
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cache import read_cache, write_cache  # noqa: E402 - resumable caches, written whole
from sparsify_choice import write_report  # noqa: E402 - a report keeps its file's note
RELAXED = (1e-2, 1e-1, 1.0)
RULES = ("sparsest", "most accurate", "lowest loss")
FREE = "no budget"  # sparsify's rule without a budget, for the choice of ``relaxed`` there


def budget(name: str) -> tuple[float, float | None]:
    """The zoo's budget: ``(max_k90, max_k90_steps)``."""
    return (50.0, 10.0) if name.startswith(("nv_gru", "nv_lstm")) else (10.0, None)


def walk(name: str, relaxed: float, seed: int = 0, distill: float | None = None) -> dict:
    """Every point of the path (cross-validation on the training part) with its k90 and held-out accuracy."""
    import torch

    from neuroview.training.sparsify import _features, _is_rnn, _walk
    from sparsify_choice import _held_out_network, held_out_scores

    net, dm = _held_out_network(name, seed)
    train, held = list(dm._loader("train")), list(dm._loader("val"))
    t0 = time.perf_counter()
    run = _walk(net, train, None, groups="step" if _is_rnn(net) else "unit", l1_ratio=1.0, relaxed=relaxed,
                points=25, ratio=1e-2, folds=5, max_iter=300, seed=0, distill=distill)
    seconds = time.perf_counter() - t0
    dense, held_acc, vy = held_out_scores(net, run, held)
    with torch.no_grad():  # label-free beside the accuracy: agreement with the dense decision, and the loss
        vf, _ = _features(net, held, "val")
        w, b = net.effective_classifier()
        dense = vf @ w.T.float() + b.float()
        vz = run.sparse.norm(vf).float()
        logits = [vz @ pw.T + pb for pw, pb in run.path]
        agree = [100.0 * float((lg.argmax(1) == dense.argmax(1)).float().mean()) for lg in logits]
        loss = [float(torch.nn.functional.cross_entropy(lg, vy)) for lg in logits]
        dense_loss = float(torch.nn.functional.cross_entropy(dense, vy))
    return {
        "entry": name, "relaxed": relaxed, "seed": seed, "distill": distill, "held_out_agree": agree, "held_out_loss": loss,
        "dense_held_out_loss": dense_loss,
        "seconds": round(seconds, 1), "n_train": len(run.y), "n_held_out": len(vy),
        "dense_held_out": dense, "cv_reference": run.reference, "cv_acc": run.val_acc.tolist(),
        "cv_loss": run.val_loss.mean(1).tolist(), "units": run.units.tolist(), "groups": run.grp.tolist(),
        "k90": run.k90.tolist(), "k90_steps": None if run.k90_steps is None else run.k90_steps.tolist(),
        "held_out_acc": held_acc,
    }


def pick(r: dict, rule: str) -> int:
    """The index of the point ``rule`` keeps within the entry's budget (the point of smallest use of
    it when none meets it, as ``sparsify`` does)."""
    import torch

    from neuroview.training.sparsify import DEVIANCE
    from neuroview.training.sparsity_path import choose_point

    acc, loss, units, grp = (torch.tensor(r[k]) for k in ("cv_acc", "cv_loss", "units", "groups"))
    m, ms = budget(r["entry"])
    use = torch.tensor(r["k90"]) / m
    if ms is not None:
        use = torch.maximum(use, torch.tensor(r["k90_steps"]) / ms)
    if rule == FREE:
        return choose_point(acc, loss[:, None], units, r["cv_reference"], 1.0, DEVIANCE, groups=grp)
    if rule == "sparsest":
        return choose_point(acc, loss[:, None], units, r["cv_reference"], 1.0, DEVIANCE, groups=grp, k90=use,
                            max_k90=1.0)
    pool = (units > 0) & (use <= 1.0)
    if not bool(pool.any()):
        pool = (units > 0) & (use == use[units > 0].min())
    idx = pool.nonzero()[:, 0].tolist()
    if rule == "most accurate":
        return min(idx, key=lambda i: (-float(acc[i]), float(loss[i])))
    if rule == "lowest loss":
        return min(idx, key=lambda i: float(loss[i]))
    raise ValueError(f"rule: expected one of {RULES}, got {rule!r}")


def report(rows: dict) -> str:
    """One line per ``relaxed`` and rule: entries within 1 point on held-out data, the gaps, units per class."""
    out = ["| relaxed | rule | runs within 1 point | mean gap, points | worst gap | median units/class | "
           "median k90 (training) |", "|---|---|---|---|---|---|---|"]
    best, free, per_entry = None, None, {}
    for relaxed in RELAXED:
        runs = sorted((r for r in rows.values() if r["relaxed"] == relaxed), key=lambda r: (r["entry"], r["seed"]))
        if not runs:
            continue
        for rule in (*RULES, FREE):
            picks = [(r, pick(r, rule)) for r in runs]
            gaps = [r["held_out_acc"][i] - r["dense_held_out"] for r, i in picks]
            units = [r["units"][i] for r, i in picks]
            within = sum(g >= -1.0 for g in gaps)
            key = (within, -statistics.median(units))
            if rule == FREE:
                free = (key, relaxed) if free is None or key > free[0] else free
            elif best is None or key > best[0]:
                best = (key, relaxed, rule)
            for (r, i), g in zip(picks, gaps):
                cell = per_entry.setdefault(r["entry"], {}).setdefault((relaxed, rule), [])
                cell.append(f"{g:+.1f} ({r['units'][i]:.0f})")
            out.append(f"| {relaxed:g} | {rule} | {within}/{len(runs)} | {statistics.mean(gaps):+.1f} | "
                       f"{min(gaps):+.1f} | {statistics.median(units):.1f} | "
                       f"{statistics.median(r['k90'][i] for r, i in picks):g} |")
    if best is None:
        return "no runs cached yet"
    out += ["", f"Kept under the budget (most runs within 1 point, then fewest units): relaxed {best[1]:g}, {best[2]}; "
            f"without a budget: relaxed {free[1]:g}.", "",
            "Per entry and seed (in seed order): held-out accuracy minus the dense network's, points (units per class):", ""]
    cols = [(a, rule) for a in RELAXED for rule in (*RULES, FREE)]
    out.append("| entry | " + " | ".join(f"{rule}, {a:g}" for a, rule in cols) + " |")
    out.append("|---|" + "---|" * len(cols))
    for name, cells in sorted(per_entry.items()):
        out.append(f"| {name} | " + " | ".join(", ".join(cells.get(c, [])) for c in cols) + " |")
    return "\n".join(out)


def report_distill(rows: dict) -> str:
    """Labels against each temperature (``--distill``), on the networks walked with all of them."""
    from neuroview.training.sparsify import RELAXED as DEFAULT

    runs = [r for r in rows.values() if r["relaxed"] == DEFAULT]
    temps = sorted({r["distill"] for r in runs if r.get("distill") is not None})
    if not temps:
        return ""
    by = {(r["entry"], r["seed"], r.get("distill")): r for r in runs}
    common = sorted({(e, s) for e, s, _ in by if all((e, s, t) in by for t in (None, *temps))})
    out = [f"## Labels or the dense network's probabilities (`--distill`), relaxed {DEFAULT:g}, {len(common)} runs", "",
           "| fitted to | rule | runs within 1 point | mean gap, points | worst gap | agreement with dense, % | "
           "held-out loss minus dense's | median units/class |", "|---|---|---|---|---|---|---|---|"]
    per_entry, verdict = {}, {}
    for t in (None, *temps):
        for rule in ("sparsest", FREE):
            picks = [(r, pick(r, rule)) for r in (by[(e, s, t)] for e, s in common)]
            gaps = [r["held_out_acc"][i] - r["dense_held_out"] for r, i in picks]
            within = sum(g >= -1.0 for g in gaps)
            loss = [r["held_out_loss"][i] - r["dense_held_out_loss"] for r, i in picks]
            name = "labels" if t is None else f"T = {t:g}"
            if rule == "sparsest":
                verdict[t] = (within, statistics.mean(gaps))
            out.append(f"| {name} | {rule} | {within}/{len(picks)} | {statistics.mean(gaps):+.1f} | {min(gaps):+.1f} | "
                       f"{statistics.mean(r['held_out_agree'][i] for r, i in picks):.1f} | {statistics.mean(loss):+.3f} | "
                       f"{statistics.median(r['units'][i] for r, i in picks):.1f} |")
            for (r, i), g in zip(picks, gaps):
                per_entry.setdefault(r["entry"], {}).setdefault((name, rule), []).append(f"{g:+.1f} ({r['units'][i]:.0f})")
    base = verdict[None]
    wins = [t for t in temps if verdict[t][0] > base[0] and verdict[t][1] >= base[1]]
    best = max(wins, key=lambda t: (verdict[t][0], -t)) if wins else None
    out += ["", "Verdict (the rule in the docstring): " + ("the labels stay" if best is None else f"T = {best:g} replaces the labels"),
            "", "Per entry and seed (in seed order), under the budget and without: held-out accuracy minus the dense "
            "network's, points (units per class):", ""]
    cols = [(("labels" if t is None else f"T = {t:g}"), rule) for t in (None, *temps) for rule in ("sparsest", FREE)]
    out.append("| entry | " + " | ".join(f"{n}, {rule}" for n, rule in cols) + " |")
    out.append("|---|" + "---|" * len(cols))
    for name, cells in sorted(per_entry.items()):
        out.append(f"| {name} | " + " | ".join(", ".join(cells.get(c, [])) for c in cols) + " |")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--entries", nargs="*", help="zoo entries (default: every dense NeuroView entry)")
    p.add_argument("--relaxed", nargs="*", type=float, default=list(RELAXED), help="the relaxed refit's ridges to walk")
    p.add_argument("--seeds", nargs="*", type=int, default=[0], help="the networks' training seeds (the held-out split is the same)")
    p.add_argument("--distill", nargs="*", type=float, default=[],
                   help="also walk with sparsify(distill=T) at each temperature (cached apart)")
    p.add_argument("--report", action="store_true",
                   help="only judge the rules from the cache and print them (the .md is left as it is)")
    args = p.parse_args(argv)
    import torch

    from sparsify_zoo import dense_entries

    torch.set_num_threads(1)
    results = DISTILL if args.distill else RESULTS
    rows, walked = read_cache(results), []
    if not args.report:
        for name in args.entries or dense_entries():
            for seed, relaxed, t in ((s, a, t) for s in args.seeds for a in args.relaxed for t in (None, *args.distill)):
                key = f"{name}:{relaxed:g}:{seed}" + ("" if t is None else f":T{t:g}")
                if key in rows:
                    continue
                rows[key] = r = walk(name, relaxed, seed, t)
                walked.append(key)
                i = pick(r, "sparsest")
                print(f"{key}: dense {r['dense_held_out']:.1f}% held out; sparsest in budget {r['units'][i]:.1f} "
                      f"units/class at {r['held_out_acc'][i]:.1f}% ({r['seconds']} s)", flush=True)
                write_cache(results, json.dumps(rows, indent=1))
    command = " ".join(["python benchmarks/sparsify_budget_choice.py", *(sys.argv[1:] if argv is None else argv)])
    if args.distill:
        text = report_distill(rows)
        write_report(DISTILL.with_suffix(".md"), "sparsify fitted to labels or to the dense network's probabilities, "
                     "judged on held-out data", command, text, walked)
        print(text)
        return 0
    text = report(rows)
    write_report(REPORT, "sparsify's point under a readability budget, judged on held-out data", command, text, walked)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
