"""How ``nv.sparsify`` picks its point without a validation split, chosen on held-out data.

Without ``val``, :func:`neuroview.sparsify` carves validation from the training split by
cross-validation. The backbone has seen those samples, so cross-validated accuracy saturates and
the rule that picks a point (``deviance``: the share of the path's drop in validation
cross-entropy a point must keep) and the RNN's ``l1_ratio`` cannot be judged there. This study
judges them on samples no network of it has seen, and never reads a test split:

- every dense NeuroView entry of the zoo is trained with a validation split held out from its
  training (the entries whose recipe already holds one out are taken as they are; the others,
  whose recipes train on every training series, are re-trained by their recipe with
  ``val_fraction 0.25``, seed 0);
- the path is walked as ``sparsify`` walks it with ``val=None`` (5-fold cross-validation on the
  training part only), and every point is also scored on the held-out split;
- a rule is then judged by the held-out accuracy of the point it picks, against the dense
  network's own held-out accuracy. The rule kept is the one with the most entries within 1 point
  (``sparsify``'s default tolerance) of the dense network; ties go to fewer units per class.

    nice -n 10 python benchmarks/sparsify_choice.py               # walk every entry (cached)
    python benchmarks/sparsify_choice.py --report                 # judge the rules from the cache (prints only)

Runs are cached one by one in ``benchmarks/results/sparsify_choice.json`` (key: entry and
``l1_ratio``); the report of a run that walked an entry goes to ``benchmarks/results/sparsify_choice.md``,
under the note the file had (the commit and networks its runs came from) and a line naming the new runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "sparsify_choice.json"
REPORT = RESULTS.with_suffix(".md")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cache import read_cache, write_cache  # noqa: E402 - resumable caches, written whole
HELD_OUT = 0.25  # the share of the training split held out where the recipe holds out nothing
DEVIANCES = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 1.0)
RNN_L1_RATIOS = (1.0, 0.97)


def _held_out_network(name: str, seed: int = 0):
    """``(dense network, data module)``: the network (trained with ``seed``) never saw the data
    module's validation split (the split's own seed is the data module's, whatever ``seed``)."""
    import neuroview as nv
    from neuroview.zoo.pretrained import get_entry, make_datamodule
    from sparsify_zoo import _retrained

    _, entry = get_entry(name)
    spec = json.loads(json.dumps(entry["dataset"]["data_module"]))
    if spec["init_args"].get("val_fraction", 0) > 0:
        net = nv.create_model(name, pretrained=True) if seed == entry.get("seed", 0) else _retrained(name, entry, seed)
        net = net.eval()
    else:
        net = _retrained_held_out(name, entry, seed)
        spec["init_args"]["val_fraction"] = HELD_OUT
    dm = make_datamodule(spec)
    dm.setup("fit")
    return net, dm


NETWORKS = ROOT / "benchmarks" / ".cache" / "held_out"  # the re-trained networks' weights (not in git)


def _retrained_held_out(name: str, entry: dict, seed: int = 0):
    """``name``'s zoo recipe re-trained (``seed``) with :data:`HELD_OUT` of its training split held
    out, its weights cached (other studies read the same networks)."""
    from sparsify_zoo import _retrained

    return _retrained(name, entry, seed, ("--data.init_args.val_fraction", str(HELD_OUT)), NETWORKS)


def held_out_scores(net, run, held) -> tuple:
    """``(the dense network's held-out accuracy, each path point's, the held-out labels)``, in %."""
    import torch

    from neuroview.training.sparsify import _features, point_accuracy as _acc

    vf, vy = _features(net, held, "val")
    with torch.no_grad():
        w, b = net.effective_classifier()
        dense = 100.0 * float(((vf @ w.T.float() + b.float()).argmax(1) == vy).float().mean())
        return dense, _acc(run.path, run.sparse.norm(vf).float(), vy).tolist(), vy


def walk(name: str, l1_ratios) -> list[dict]:
    """Every point of the path walked with cross-validation on the training part, with its held-out accuracy."""
    from neuroview.training.sparsify import _is_rnn, _walk

    net, dm = _held_out_network(name)
    train, held = list(dm._loader("train")), list(dm._loader("val"))
    rows = []
    for a in l1_ratios:
        t0 = time.perf_counter()
        run = _walk(net, train, None, groups="step" if _is_rnn(net) else "unit", l1_ratio=a, relaxed=1e-2,
                    points=25, ratio=1e-2, folds=5, max_iter=300, seed=0)
        seconds = time.perf_counter() - t0
        dense, held_acc, vy = held_out_scores(net, run, held)
        loss = run.val_loss
        rows.append({
            "entry": name, "l1_ratio": a, "seconds": round(seconds, 1), "n_train": len(run.y), "n_held_out": len(vy),
            "dense_held_out": dense, "cv_reference": run.reference, "cv_acc": run.val_acc.tolist(),
            "cv_loss": loss.mean(1).tolist(), "cv_loss_se": (loss.std(1) / loss.shape[1] ** 0.5).tolist(),
            "units": run.units.tolist(), "groups": run.grp.tolist(), "held_out_acc": held_acc,
        })
    return rows


def _pick(r: dict, rule) -> int:
    import torch

    from neuroview.training.sparsify import choose_point

    acc, units, grp = (torch.tensor(r[k]) for k in ("cv_acc", "units", "groups"))
    loss = torch.tensor(r["cv_loss"])[:, None]
    if rule == "1se":  # glmnet's lambda.1se: within one standard error of the lowest loss, no deviance share
        se = torch.tensor(r["cv_loss_se"])
        best = int(loss[:, 0].argmin())
        ok = (loss[:, 0] <= loss[best, 0] + se[best]) & (units > 0)
        ok &= acc >= r["cv_reference"] - 1.0
        idx = ok.nonzero()[:, 0].tolist() or [best]
        return min(idx, key=lambda i: (float(grp[i]), float(units[i])))
    return choose_point(acc, loss, units, r["cv_reference"], 1.0, rule, groups=grp)


def report(rows: dict) -> str:
    """One line per rule and ``l1_ratio``: entries within 1 point on held-out data, the mean gap, units per class."""
    import statistics

    out = ["| l1_ratio (RNN) | rule | entries within 1 point | mean gap, points | worst gap | median units/class |",
           "|---|---|---|---|---|---|"]
    best = None
    for a in RNN_L1_RATIOS:
        runs = [r for r in rows.values() if r["l1_ratio"] == a or (r["l1_ratio"] == 1.0 and not r["entry"].startswith(("nv_gru", "nv_lstm")))]
        for rule in (*DEVIANCES, "1se"):
            gaps, units = [], []
            for r in runs:
                i = _pick(r, rule)
                gaps.append(r["held_out_acc"][i] - r["dense_held_out"])
                units.append(r["units"][i])
            within = sum(g >= -1.0 for g in gaps)
            key = (within, -statistics.median(units))
            if best is None or key > best[0]:
                best = (key, a, rule)
            out.append(f"| {a:g} | {'1 SE' if rule == '1se' else f'deviance {rule:g}'} | {within}/{len(runs)} | "
                       f"{statistics.mean(gaps):+.1f} | {min(gaps):+.1f} | {statistics.median(units):.1f} |")
    out.append("")
    out.append(f"Kept (most entries within 1 point, then fewest units): l1_ratio {best[1]:g}, "
               f"{'1 SE' if best[2] == '1se' else f'deviance {best[2]:g}'}.")
    return "\n".join(out)


def write_report(path: Path, title: str, command: str, text: str, walked: list[str]) -> None:
    """The report ``text`` into ``path`` after a run that walked ``walked`` (cache keys); a run that walked nothing
    (``--report``, or every entry cached) leaves the file as it is. The note under the file's title (which commit and
    networks its runs came from: a re-run does not give those networks back) stays, once, and a line names the new
    runs; the old report below it (from its first table row or ``## `` heading: the distill report opens with one)
    goes."""
    if not walked:
        return
    note = []
    for line in (path.read_text().split("\n")[1:] if path.is_file() else []):
        if line.startswith(("|", "## ")):  # the old report: the note ends above it
            break
        note.append(line)
    now = f"`{command}` on {time.strftime('%Y-%m-%d')}: {len(walked)} new run(s) ({', '.join(walked)})."
    write_cache(path, f"# {title}\n\n" + "\n\n".join(filter(None, ("\n".join(note).strip(), now))) + f"\n\n{text}\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--entries", nargs="*", help="zoo entries (default: every dense NeuroView entry)")
    p.add_argument("--report", action="store_true",
                   help="only judge the rules from the cache and print them (the .md is left as it is)")
    args = p.parse_args(argv)
    import torch

    from sparsify_zoo import dense_entries

    torch.set_num_threads(1)
    rows, walked = read_cache(RESULTS), []
    if not args.report:
        for name in args.entries or dense_entries():
            ratios = RNN_L1_RATIOS if name.startswith(("nv_gru", "nv_lstm")) else (1.0,)
            if all(f"{name}:{a:g}" in rows for a in ratios):
                continue
            for r in walk(name, ratios):
                rows[f"{name}:{r['l1_ratio']:g}"] = r
                walked.append(f"{name}:{r['l1_ratio']:g}")
                i = _pick(r, 0.95)
                print(f"{name} l1_ratio {r['l1_ratio']:g}: dense {r['dense_held_out']:.1f}%, deviance 0.95 picks "
                      f"{r['units'][i]:.1f} units/class at {r['held_out_acc'][i]:.1f}% held out ({r['seconds']} s)", flush=True)
            write_cache(RESULTS, json.dumps(rows, indent=1))
    text = report(rows)
    command = " ".join(["python benchmarks/sparsify_choice.py", *(sys.argv[1:] if argv is None else argv)])
    write_report(REPORT, "sparsify's point rule, judged on held-out data", command, text, walked)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
