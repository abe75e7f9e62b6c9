"""``neuroview demo``: wrap a small CNN, train it on scikit-learn's digits, show its top units.

Offline, CPU, about a minute on 2 cores: the library in a plain PyTorch loop, without Lightning. It is not the main
job's network: ``neuroview fit --config recipes/digits_nv_small_cnn.yaml`` trains the same architecture
(``nv_small_cnn``, 224 units) otherwise, so its top units (and ``nv_small_cnn.digits``'s) are not this demo's:

- quantizer: the library's default, ``hard`` (on/off bits; ``--quantizer soft`` takes the recipe's), against the
  recipe's ``soft`` (sigmoids);
- inputs: the pixels / 16, in [0, 1], against standardized by the training split's statistics;
- split: 20% held out for test by scikit-learn's ``train_test_split`` (360 digits) and no validation split, against
  :class:`~neuroview.data.DigitsDataModule`'s 20% test split (359 digits) and 10% of the rest for validation;
- schedule: AdamW with a one-cycle schedule (a warm-up over 30% of the steps, then cosine decay) for 15 epochs
  (``--epochs``), against AdamW with a 1-epoch warm-up, then cosine decay, for 20 epochs.

May import ``neuroview.zoo``, and scikit-learn inside the function that needs it (it imports slowly).
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from ..zoo import create_model


def load_digits_tensors(seed: int = 0, test_size: float = 0.2):
    """scikit-learn's 8x8 digits as ``[N, 1, 8, 8]`` tensors in [0, 1], split stratified by ``seed``."""
    from sklearn.datasets import load_digits  # noqa: PLC0415
    from sklearn.model_selection import train_test_split  # noqa: PLC0415

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(d.target, dtype=torch.long)
    i_tr, i_te = train_test_split(range(len(y)), test_size=test_size, random_state=seed, stratify=d.target)
    return x[i_tr], y[i_tr], x[i_te], y[i_te]


def train(net, x, y, *, epochs: int, lr: float = 3e-3, batch_size: int = 64, seed: int = 0, weight_decay: float = 1e-4):
    """A plain AdamW loop with a one-cycle schedule (a warm-up over 30% of the steps, then cosine decay) and no
    validation; the digits recipe warms up for 1 epoch, then decays by cosine, with validation, logs and checkpoints."""
    g = torch.Generator().manual_seed(seed)
    if getattr(net, "sites", True) is None:  # a NeuroView-CNN finds its sites on real data, before the optimizer
        net.discover(x[:2])
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * ((len(y) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    net.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=g).split(batch_size):
            if len(idx) < 2:  # BatchNorm needs two samples
                continue
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
            sched.step()
    return net.eval()


@torch.no_grad()
def accuracy(net, x, y, batch_size: int = 512) -> float:
    net.eval()
    pred = torch.cat([net(xb).argmax(1) for xb in x.split(batch_size)])
    return (pred == y).float().mean().item()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        allow_abbrev=False, prog="neuroview demo", description=__doc__.splitlines()[0],
        epilog="not the main job's network: `neuroview fit --config recipes/digits_nv_small_cnn.yaml` trains nv_small_cnn "
               "with the soft quantizer (this demo: the library's default), standardized inputs, a validation split and "
               "20 epochs of another schedule, so its top units are not this demo's; --quantizer soft takes its "
               "quantizer, not its run")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--quantizer", default=None, help="hard, soft or none (default: the library's default)")
    p.add_argument("--seed", type=int, default=0, help="the split, the initial weights and the shuffle (an int in [0, 2**32))")
    p.add_argument("--top", type=int, default=3, help="units to show per class")
    args = p.parse_args(argv)
    for name in ("epochs", "top"):
        if getattr(args, name) < 1:
            p.error(f"--{name}: expected an int >= 1, got {getattr(args, name)}")
    if not 0 <= args.seed < 2 ** 32:  # scikit-learn's split takes no other: its traceback named its own random_state
        p.error(f"--seed: expected an int in [0, 2**32), got {args.seed}")

    t0 = time.perf_counter()
    torch.manual_seed(args.seed)
    x_tr, y_tr, x_te, y_te = load_digits_tensors(args.seed)
    kw = {} if args.quantizer is None else {"quantizer": args.quantizer}
    try:
        net = create_model("nv_small_cnn", num_classes=10, in_channels=1, **kw)
    except ValueError as e:  # an unknown quantizer: one line, as argparse's own errors
        p.error(f"--quantizer: {e}")
    net.discover(x_tr[:2])  # its sites are found on a first batch: the line below counts them
    print(f"NeuroView-CNN on digits: {len(net.sites)} sites, {net.num_units} units, quantizer={net.quantizer!r}")
    train(net, x_tr, y_tr, epochs=args.epochs, seed=args.seed)
    acc = accuracy(net, x_te, y_te)
    exp = net.explain(x_te)
    residual = exp.residual().abs().max().item()
    print(f"test accuracy {acc:.2%} on {len(y_te)} digits; "
          f"max |logit - (bias + sum of unit contributions)| = {residual:.1e}")
    print(f"top {args.top} units per class (site[channel]: logit change per standard deviation of the unit's code)")
    for c, units in enumerate(net.top_units(args.top)):
        print(f"  class {c}: " + "; ".join(f"{s}[{ch}] {w:+.2f}" for s, ch, w in units))
    print(f"done in {time.perf_counter() - t0:.0f} s")
    return 0
