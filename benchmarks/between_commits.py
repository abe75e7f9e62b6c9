"""Per-call cost of forward, explain and a train step of small NeuroView networks (nv_small_cnn on 64 x 3x32x32,
nv_lite on 16 x 150), for two checkouts of the repository, each in its own process, one thread, the trees run in
alternating order each round; medians of the rounds and their ratio. What a change costs on the hot path:

    git worktree add /tmp/old <sha>
    OMP_NUM_THREADS=1 python benchmarks/between_commits.py /tmp/old . --rounds 5
    git worktree remove --force /tmp/old

Run it from outside the old tree's folder; on a machine shared with other jobs the ratios move by 20-30% from run
to run (run it twice: a cost that is real shows on the same rows both times).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CODE = r'''
import sys, time, json, warnings
warnings.simplefilter("ignore")
sys.path.insert(0, sys.argv[1])
import torch, neuroview as nv
torch.set_num_threads(1)
torch.manual_seed(0)
out = {}
for name, shape, kw in (("nv_small_cnn", (64, 3, 32, 32), dict(in_channels=3)), ("nv_lite", (16, 1, 150), dict(in_channels=1))):
    net = nv.create_model(name, num_classes=4, **kw)
    x, y = torch.randn(*shape), torch.randint(0, 4, (shape[0],))
    net(x)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    def step():
        net.train(); opt.zero_grad(); torch.nn.functional.cross_entropy(net(x), y).backward(); opt.step()
    def fwd():
        net.eval()
        with torch.no_grad(): net(x)
    def exp():
        net.explain(x)
    for label, f in (("forward", fwd), ("explain", exp), ("train step", step)):
        for _ in range(3): f()
        t = time.perf_counter()
        for _ in range(30): f()
        out[f"{name} {label}"] = (time.perf_counter() - t) / 30
out["_file"] = nv.__file__
print(json.dumps(out))
'''


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("old", help="a checkout of the earlier commit (git worktree add /tmp/old <sha>)")
    p.add_argument("new", help="a checkout of the later commit (the repository itself)")
    p.add_argument("--rounds", type=int, default=5, help="rounds, each running both trees, in alternating order")
    a = p.parse_args()
    old, new = os.path.abspath(a.old), os.path.abspath(a.new)
    runs = {"old": [], "new": []}
    for r in range(a.rounds):
        for tag, tree in (("old", old), ("new", new)) if r % 2 == 0 else (("new", new), ("old", old)):
            res = subprocess.run([sys.executable, "-c", CODE, tree], capture_output=True, text=True,
                                 env={**os.environ, "OMP_NUM_THREADS": "1"})
            if res.returncode:
                raise SystemExit(f"{tree}: {res.stderr[-2000:]}")
            got = json.loads(res.stdout.strip().splitlines()[-1])
            if not got.pop("_file").startswith(tree + os.sep):  # an installed neuroview read in place of the tree's
                raise SystemExit(f"{tree}: neuroview was not imported from it")
            runs[tag].append(got)
    for key in runs["old"][0]:
        o = sorted(d[key] for d in runs["old"])[a.rounds // 2]
        n = sorted(d[key] for d in runs["new"])[a.rounds // 2]
        print(f"{key:28s} old {o * 1e3:7.2f} ms  new {n * 1e3:7.2f} ms  new/old {n / o:.3f}")


if __name__ == "__main__":
    main()
