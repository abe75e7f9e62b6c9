"""Faithfulness of NeuroView importance against random orders and post-hoc attribution.

For each case, on the test split:
  - CNNs (digits, mnist1d): unit ablation inside the backbone (neuroview.attribution.faithfulness.unit_ablation):
    accuracy and true-class logit as units are removed in the order of NeuroView's per-sample
    contributions, NeuroView's global class weights, random orders (5 seeds), and Captum's
    LayerGradientXActivation / LayerConductance (n_steps=50) of the same units;
  - RNNs (GunPoint, mnist1d): time-step deletion (neuroview.attribution.faithfulness.time_step_deletion)
    with a zero and a series-mean baseline: NeuroView per-sample and global step importance,
    random, Captum IntegratedGradients summed per step, and permutation importance.
Reports the area under each accuracy curve (lower = the order found what the decision rests
on sooner) and whether NeuroView's order beats every random seed.

Models: every NeuroView entry of the zoo (checkpoints/manifest.json) on the chosen datasets,
evaluated on its own data module's test split; for a dataset (and kind, CNN or RNN) the zoo
lacks, the same zoo architecture is trained here with a short plain loop (a "stand-in"). The
output names the source of every model.

With ``--sparse`` every model is also evaluated with a sparse global classifier beside its
dense one: the zoo's ``<entry>_sparse`` checkpoint when the manifest has it, else
``nv.sparsify`` (``groups="step"`` for RNNs) fitted here on the entry's training split. The
ablation and deletion tests are the same; only the head differs (the backbone is shared).

Writes benchmarks/results/<out>.json, .md and one figure per case (.png); ``--out`` defaults to
``faithfulness``.

    nice -n 10 python benchmarks/faithfulness.py                 # ~30 min on 2 busy cores
    python benchmarks/faithfulness.py --datasets digits --stand-ins --steps 5 --seeds 2   # smoke run
    nice -n 10 python benchmarks/faithfulness.py --sparse --out faithfulness_sparse \
        --entries nv_small_cnn.digits nv_gru.gunpoint --steps 10 --seeds 3 --n-steps 20   # dense and sparse
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from neuroview.training.demo import train as train_cnn
from neuroview.attribution.faithfulness import time_step_deletion, unit_ablation
from neuroview.zoo import create_model
from _cache import write_cache  # read back by --table-only and run_all.py: written whole (next to this script)

OUT = Path(__file__).parent / "results"


def positive(text: str) -> int:
    """An argparse type: a positive int (``--seeds 0`` ran the whole ablation, then died with a KeyError)."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text!r}")
    return n


# Stand-ins for the datasets, used when the zoo has no NeuroView checkpoint for them:
# name: (data module, kind, zoo architecture, architecture kwargs, epochs) - the zoo recipes' choices.
CASES = {
    "digits_cnn": ("digits", "cnn", "nv_small_cnn", dict(num_classes=10, in_channels=1, widths=[32, 64, 128], quantizer="soft"), 20),
    "mnist1d_cnn": ("mnist1d", "cnn", "nv_small_cnn", dict(num_classes=10, in_channels=1, dims=1, kernel_size=5, quantizer="soft"), 15),
    "gunpoint_gru": ("gunpoint", "rnn", "nv_gru", dict(num_classes=2, in_features=1, max_len=150, hidden_size=64), 150),
    "mnist1d_gru": ("mnist1d", "rnn", "nv_gru", dict(num_classes=10, in_features=1, max_len=40, hidden_size=64), 30),
}
DATA = {"digits": {"class_path": "neuroview.data.DigitsDataModule", "init_args": {}},
        "mnist1d": {"class_path": "neuroview.data.MNIST1DDataModule", "init_args": {}},
        "gunpoint": {"class_path": "neuroview.data.UCRDataModule", "init_args": {"name": "GunPoint"}}}


def data(spec: dict) -> dict[str, tuple]:
    """``(x, lengths or None, y)`` per split, standardized by the data module (as the zoo trains)."""
    from neuroview.zoo.pretrained import make_datamodule  # noqa: PLC0415

    dm = make_datamodule(spec)
    dm.setup("fit")
    out = {}
    for split, loader in (("train", dm.train_dataloader), ("val", dm.val_dataloader), ("test", dm.test_dataloader)):
        dl = loader()
        if not hasattr(dl, "dataset"):  # val_fraction=0: no validation split (the loader is an empty list)
            continue
        # the split whole, in order; the data module's collate (its datasets gather batches themselves)
        batch = next(iter(torch.utils.data.DataLoader(dl.dataset, batch_size=len(dl.dataset), collate_fn=dl.collate_fn)))
        out[split] = (batch[0], batch[1] if len(batch) == 3 else None, batch[-1])
    return out


def zoo_cases(datasets: list[str] | None) -> dict[str, tuple[str, dict]]:
    """NeuroView entries of the zoo manifest (``nv_*``), restricted to ``datasets`` unless None."""
    try:
        from neuroview.zoo.pretrained import read_manifest  # noqa: PLC0415

        entries = read_manifest()
    except Exception as e:  # noqa: BLE001 - no zoo is a reason to train stand-ins, not to stop
        print(f"zoo unavailable ({type(e).__name__}: {e}): every model is trained here")
        return {}
    return {name: (e["dataset"]["name"], e) for name, e in sorted(entries.items())
            if e["architecture"].startswith("nv_") and (datasets is None or e["dataset"]["name"] in datasets)}


def train_rnn(net: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int = 0) -> nn.Module:
    """The recipe of benchmarks/rnn_accuracy.py: AdamW 2e-3, cosine, clipping 1, batch 16 (GunPoint) / 64."""
    batch = 16 if len(y) < 500 else 64
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * math.ceil(len(y) / batch))
    net.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=g).split(batch):
            if len(idx) < 2:
                continue
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(x[idx]), y[idx]).backward()
            nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
    return net.eval()


def stand_in(case: str, d: dict, seed: int) -> tuple[nn.Module, str]:
    dataset, kind, arch, kw, epochs = CASES[case]
    torch.manual_seed(seed)
    net = create_model(arch, **kw)
    # train + val: a stand-in does no model selection
    x, y = (torch.cat([d["train"][i], d["val"][i]]) for i in (0, 2))
    t = time.perf_counter()
    if kind == "cnn":
        train_cnn(net, x, y, epochs=epochs, seed=seed)
    else:
        train_rnn(net, x.transpose(1, 2), y, epochs, seed)
    return net.eval(), f"trained here ({epochs} epochs, {time.perf_counter() - t:.0f} s): no zoo checkpoint of {arch} on {dataset}"


def per_class(net: nn.Module) -> float:
    """Units (CNN) or steps (RNN) the global classifier reads per class: nonzero weights, mean over classes."""
    from neuroview.core.rnn import NeuroViewRNN  # noqa: PLC0415

    w = net.effective_classifier()[0].detach()
    if isinstance(net, NeuroViewRNN):
        w = w.reshape(net.num_classes, *net.feature_shape).abs().sum((1, 2, 4))  # [C, steps]
    return round((w != 0).sum(-1).float().mean().item(), 1)


def sparse_of(case: str, net: nn.Module, zoo_entry: dict | None, d: dict, args) -> tuple[nn.Module, str]:
    """The sparse head of ``case``: the zoo's ``<case>_sparse`` when it exists, else nv.sparsify here."""
    from neuroview import sparsify  # noqa: PLC0415 - only --sparse needs it
    from neuroview.core.rnn import NeuroViewRNN  # noqa: PLC0415

    name = f"{case}_sparse"
    if zoo_entry is not None and name in zoo_cases(None):
        return create_model(name, pretrained=True).eval(), f"zoo checkpoint {name!r}"
    groups = "step" if isinstance(net, NeuroViewRNN) else None
    if zoo_entry is not None:  # the entry's own data module: its training split (and validation split, if any)
        from neuroview.zoo.pretrained import make_datamodule  # noqa: PLC0415

        train = make_datamodule(zoo_entry["dataset"]["data_module"])
    else:  # a stand-in was trained on train + val: sparsify cross-validates on the training split
        x, lengths, y = d["train"]
        train = [(x, y)] if lengths is None else [(x, lengths, y)]
    t = time.perf_counter()
    sparse = sparsify(net, train, groups=groups, seed=args.seed).eval()
    return sparse, f"nv.sparsify(groups={groups!r}) of it on its training split, here ({time.perf_counter() - t:.0f} s)"


_TRAINED: dict[tuple[str, int], tuple[nn.Module, str]] = {}


def run_case(case: str, args, zoo_entry: dict | None = None, sparse: bool = False) -> dict:
    from neuroview.core.cnn import NeuroViewCNN  # noqa: PLC0415

    if zoo_entry is not None:
        dataset, arch = zoo_entry["dataset"]["name"], zoo_entry["architecture"]
        d = data(zoo_entry["dataset"]["data_module"])
        net, source = create_model(case, pretrained=True).eval(), f"zoo checkpoint {case!r}"
    else:
        dataset, _, arch, _, _ = CASES[case]
        d = data(DATA[dataset])
        if (case, args.seed) not in _TRAINED:  # the sparse head's run reuses the dense one's network
            _TRAINED[case, args.seed] = stand_in(case, d, args.seed)
        net, source = _TRAINED[case, args.seed]
    if sparse:
        net, how = sparse_of(case, net, zoo_entry, d, args)
        source = f"{source}; sparse head: {how}"
    kind = "cnn" if isinstance(net, NeuroViewCNN) else "rnn"
    print(f"[{case}{' sparse' if sparse else ''}] {arch} on {dataset}: {source}", flush=True)
    x, lengths, y = d["test"]
    if args.max_test and len(y) > args.max_test:  # a fixed subset: the same samples for every order
        keep = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))[: args.max_test].sort().values
        x, y, lengths = x[keep], y[keep], None if lengths is None else lengths[keep]
    t = time.perf_counter()
    results = {}
    if kind == "cnn":
        res = unit_ablation(net, x, y, seeds=range(args.seeds), steps=args.steps, n_steps=args.n_steps)
        results["units"] = res
    else:
        x = x.transpose(1, 2)  # [B, C, T] -> [B, T, F]
        for base in ("zero", "mean"):
            results[f"steps, {base} baseline"] = time_step_deletion(
                net, x, y, lengths=lengths, seeds=range(args.seeds), steps=args.steps, n_steps=args.n_steps, baseline=base)
    out = {"dataset": dataset, "architecture": arch, "source": source, "from_zoo": zoo_entry is not None,
           "head": "sparse" if sparse else "dense", "per_class": per_class(net), "test_samples": len(y), "seconds": round(time.perf_counter() - t, 1), "tests": {}}
    for name, res in results.items():
        first = next(iter(res.curves.values()))
        rand = [c.auc() for n, c in res.curves.items() if n.startswith("random:")]
        aucs = res.aucs()
        out["tests"][name] = {
            "test_accuracy": float(first.accuracy[0]),
            "auc_accuracy": aucs, "auc_true_logit": res.aucs("true_logit"),
            "neuroview_beats_random": aucs["neuroview"] < aucs["random"],
            "neuroview_beats_every_random_seed": aucs["neuroview"] < min(rand),
            "neuroview_global_beats_random": aucs["neuroview_global"] < aucs["random"],
            "skipped": res.skipped,
            "notes": res.notes,
            "curves": {n: {"count": c.count.tolist(), "accuracy": [round(v, 4) for v in c.accuracy.tolist()],
                           "true_logit": [round(v, 4) for v in c.true_logit.tolist()]} for n, c in res.curves.items()},
        }
        for msg in res.skipped.items():
            print(f"  skipped {msg[0]}: {msg[1]}")
        for msg in res.notes.items():
            print(f"  note on {msg[0]}: {msg[1]}")
        print(f"  {name}: accuracy {first.accuracy[0]:.3f}; AUC " + ", ".join(f"{k} {v:.3f}" for k, v in aucs.items()), flush=True)
        try:
            fig = res.plot(title=f"{arch} on {dataset}{', sparse head' if sparse else ''}: {name}")
            slug = name.replace(",", "").replace(" baseline", "").replace(" ", "_")
            head = "_sparse" if sparse else ""
            fig.savefig(OUT / f"{args.out}_{case.replace('.', '_')}{head}_{slug}.png", dpi=110)
        except ImportError as e:
            print(f"  no figure: {e}")
    return out


LABELS = {"neuroview": "NeuroView", "neuroview_global": "NeuroView global", "random": "random (mean ± std)",
          "layer_grad_x_act": "LayerGradXAct", "layer_conductance": "LayerConductance",
          "integrated_gradients": "IntegratedGradients", "permutation": "permutation"}


def table(cases: dict, metric: str = "accuracy") -> str:
    """Areas under the accuracy curves (``metric="accuracy"``) or the mean true-class logit curves
    (``"true_logit"``, without the per-seed check, which the json holds for accuracy only)."""
    cols = ["neuroview", "neuroview_global", "random", "layer_grad_x_act", "layer_conductance", "integrated_gradients", "permutation"]
    last = metric == "accuracy"
    marks: dict[str, str] = {}  # note -> its mark: a cell whose curve carries a note (DeletionCurves.notes) is marked
    lines = ["| model | test | accuracy | " + " | ".join(LABELS[c] for c in cols) + (" | NeuroView < every random seed |" if last else " |"),
             "|---" * (len(cols) + 3 + last) + "|"]
    for case, r in cases.items():
        for test, t in r["tests"].items():
            a = t[f"auc_{metric}"]
            cells = []
            for c in cols:
                if c == "random":
                    cells.append(f"{a['random']:.3f} ± {a['random_std']:.3f}")
                elif c in a:
                    v = f"{a[c]:.3f}"
                    v = f"**{v}**" if a[c] == min(a[k] for k in a if k != "random_std") else v
                    note = t.get("notes", {}).get(c)  # runs before notes existed have none
                    cells.append(v + (marks.setdefault(note, "†" * (len(marks) + 1)) if note else ""))
                else:
                    cells.append("–")
            src = "zoo" if r["from_zoo"] else "stand-in"
            head = ""
            if "head" in r:  # runs before --sparse existed have no head
                what = "units" if test == "units" else "steps"
                head = f", {r['head']} head ({r['per_class']:g} {what} per class)"
            check = f" {'yes' if t['neuroview_beats_every_random_seed'] else 'NO'} |" if last else ""
            lines.append(f"| {r['architecture']} on {r['dataset']} ({src}){head} | {test} | {t['test_accuracy']:.1%} | "
                         + " | ".join(cells) + " |" + check)
    if marks:
        lines.append("")
        lines += [f"{mark} {note}." for note, mark in marks.items()]
    return "\n".join(lines)


def markdown(cases: dict) -> str:
    """The accuracy table; where sparse heads are in, the true-class logit table below it."""
    md = table(cases)
    if any(r.get("head") == "sparse" for r in cases.values()):
        # a sparse head with its units removed predicts from its bias alone: accuracy falls to the
        # constant prediction's, not below, so the logit separates orders that accuracy cannot
        md += ("\n\nArea under the mean true-class logit curve (compare orders within a row: "
               "dense and sparse heads have their own logit scales):\n\n" + table(cases, "true_logit"))
    return md


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--datasets", nargs="+", default=["digits", "mnist1d", "gunpoint", "japanesevowels"],
                   help="zoo datasets to evaluate (the zoo's dataset names); 'all' for every NeuroView zoo entry")
    p.add_argument("--stand-ins", nargs="*", default=None, choices=list(CASES),
                   help="stand-in cases to train here (default: those whose dataset and kind the zoo lacks)")
    p.add_argument("--max-test", type=int, default=1000, help="test samples per case (a fixed random subset beyond it)")
    p.add_argument("--seeds", type=positive, default=5, help="random orders (at least 1: the tables compare with them)")
    p.add_argument("--steps", type=positive, default=30, help="points on each curve after 0")
    p.add_argument("--n-steps", type=positive, default=50, help="LayerConductance / IntegratedGradients steps")
    p.add_argument("--seed", type=int, default=0, help="training seed of the stand-ins")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--entries", nargs="+", default=None, help="only these zoo entries (and no stand-ins unless --stand-ins names some)")
    p.add_argument("--sparse", action="store_true", help="also evaluate each model with a sparse head (see the docstring)")
    p.add_argument("--out", default="faithfulness", help="results name under benchmarks/results (json, md, figures)")
    p.add_argument("--table-only", action="store_true", help="rewrite <out>.md from <out>.json, running nothing")
    args = p.parse_args(argv)
    if args.table_only:
        result = json.loads((OUT / f"{args.out}.json").read_text())
        write_cache(OUT / f"{args.out}.md", markdown(result["cases"]) + "\n")
        return result
    torch.set_num_threads(args.threads)
    OUT.mkdir(exist_ok=True)
    t = time.perf_counter()
    zoo = zoo_cases(None if "all" in args.datasets or args.entries else args.datasets)
    if args.entries:
        missing = [e for e in args.entries if e not in zoo]
        if missing:
            raise SystemExit(f"--entries: not NeuroView zoo entries: {missing}")
        zoo = {e: zoo[e] for e in args.entries}
    cases = {}
    for name, (_, entry) in zoo.items():
        cases[name] = run_case(name, args, entry)
        if args.sparse:
            cases[f"{name} (sparse)"] = run_case(name, args, entry, sparse=True)
    have = {(r["dataset"], r["architecture"].split("_")[1] in ("gru", "lstm", "rnn")) for r in cases.values()}
    todo = args.stand_ins if args.stand_ins is not None else [] if args.entries else [
        c for c, (ds, kind, arch, _, _) in CASES.items()
        if ds in args.datasets and (ds, kind == "rnn") not in have]
    for c in todo:
        cases[c] = run_case(c, args)
        if args.sparse:
            cases[f"{c} (sparse)"] = run_case(c, args, sparse=True)
    md = markdown(cases)
    meta = {"seeds": args.seeds, "max_test": args.max_test, "steps": args.steps, "n_steps": args.n_steps, "threads": args.threads,
            "torch": torch.__version__, "minutes": round((time.perf_counter() - t) / 60, 1),
            "command": "python benchmarks/faithfulness.py" + "".join(" " + a for a in (sys.argv[1:] if argv is None else argv))}
    result = {"meta": meta, "cases": cases}
    write_cache(OUT / f"{args.out}.json", json.dumps(result, indent=1))
    write_cache(OUT / f"{args.out}.md", md + "\n")
    print(md)
    return result


if __name__ == "__main__":
    main()
