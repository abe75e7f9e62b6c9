"""Tiny files in the published MNIST (IDX) and CIFAR-10 (pickled batches) formats, for the tests
of every layer that reads them (importable from any test folder: tests/ is on the path through
its conftest.py)."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np

from neuroview.data import CIFAR10DataModule


def write_idx(path, arr: np.ndarray, gz: bool) -> None:
    header = struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def make_mnist(root, n_train=40, n_test=20, gz=True) -> None:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(root / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), gz)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10, gz)


def make_cifar(root, per_batch=20) -> None:
    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    # the published batches are Python 2 pickles: bytes keys, data uint8 [N, 3072], labels a list
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        d = {b"batch_label": name.encode(), b"labels": [i % 10 for i in range(per_batch)],
             b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
             b"filenames": [f"{i}.png".encode() for i in range(per_batch)]}
        with open(folder / name, "wb") as f:
            pickle.dump(d, f, protocol=2)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [c.encode() for c in CIFAR10DataModule.CLASSES]}, f, protocol=2)
