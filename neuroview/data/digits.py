"""scikit-learn's 8x8 digits as a data module: offline, small, the set the quick recipes use.

Holds :class:`DigitsDataModule`. May import the rest of ``neuroview.data`` and third-party
libraries; nothing else from neuroview.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from .arrays import ArrayDataModule, check_fraction, stratified_split


class DigitsDataModule(ArrayDataModule):
    """scikit-learn's 8x8 digits (1,797 images, 10 classes), shipped with scikit-learn.

    The set has no test split: ``test_fraction`` of it is held out (stratified, with a fixed seed of its
    own: the same test split for every ``seed``), then ``val_fraction`` of the rest by ``seed``. ``resample``: as in
    :class:`~neuroview.data.ArrayDataModule` (variable-length series only: images are never stretched); taken so
    that a checkpoint's record of the module's arguments rebuilds it.
    """

    FIXED_SHAPE = (10, 1, None)
    LABELS = tuple(str(i) for i in range(10))

    def __init__(self, *, test_fraction: float = 0.2, batch_size: int | Literal["auto"] = 64, val_fraction: float = 0.1,
                 seed: int = 0,
                 val_fold: int | None = None, normalize: bool | Literal["series", "sample"] = True, num_workers: int = 0,
                 eval_batch_size: int | None = None, resample: bool = False):
        super().__init__(batch_size=batch_size, val_fraction=val_fraction, seed=seed,
                         val_fold=val_fold, normalize=normalize,
                         num_workers=num_workers, eval_batch_size=eval_batch_size, resample=resample)
        check_fraction("test_fraction", test_fraction)
        self.test_fraction = test_fraction

    def load(self) -> dict[str, tuple]:
        from sklearn.datasets import load_digits  # noqa: PLC0415 - sklearn is slow to import

        d = load_digits()
        x = d.images.astype(np.float32)[:, None]
        # a seed of its own so that changing the validation seed never moves test samples
        keep, test = stratified_split(d.target, self.test_fraction, 12345)
        return {"train": (x[keep], d.target[keep]), "test": (x[test], d.target[test])}
