"""The UCR/UEA time-series classification sets that aeon ships, as a data module.

Holds :data:`UCR_DATASETS` and :class:`UCRDataModule`. May import the rest of ``neuroview.data``
and third-party libraries; nothing else from neuroview.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from .arrays import ArrayDataModule
from .lengths import resample_option as flag

#: The UCR/UEA classification sets that aeon ships inside its wheel (no download).
UCR_DATASETS = ("GunPoint", "ItalyPowerDemand", "BasicMotions", "JapaneseVowels", "ArrowHead", "OSULeaf",
                "ACSF1", "PickupGestureWiimoteZ", "UnitTest")


class UCRDataModule(ArrayDataModule):
    """A UCR/UEA classification set shipped inside aeon, by name: ``UCRDataModule("GunPoint")``.

    Sequences come as ``[B, C, T]``; variable-length sets (JapaneseVowels,
    PickupGestureWiimoteZ) are zero-padded to the longest series of the training split the model
    is fit on and batched as ``(x, lengths, y)``; a longer validation or test series is truncated
    to that length, with a warning (JapaneseVowels: training series reach 26 steps, one test
    series has 29). ``resample=True`` stretches every series to that length instead (linear
    interpolation; nothing is truncated or masked), as the ``ucr_*`` recipes do. String labels
    are encoded in numeric order when they are numbers.
    ``batch_size="auto"`` (the default) takes a tenth of the training series, within [4, 64].
    Sets outside :data:`UCR_DATASETS` need ``download=True`` (aeon fetches them once).

    >>> import warnings
    >>> dm = UCRDataModule("JapaneseVowels")
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     dm.num_classes, dm.in_channels, dm.max_len, dm.variable_length
    (9, 12, 26, True)
    >>> print(caught[0].message)
    UCRDataModule: 1 test series of up to 29 steps truncated to 26 steps, the longest training series (max_len: the classifier has no trained weights for later steps)
    """

    def __init__(self, name: str = "GunPoint", *, batch_size: int | Literal["auto"] = "auto", val_fraction: float = 0.2,
                 seed: int = 0,
                 val_fold: int | None = None, normalize: bool | Literal["series", "sample"] = True, num_workers: int = 0,
                 eval_batch_size: int | None = None, download: bool = False, resample: bool = False):
        super().__init__(batch_size=batch_size, val_fraction=val_fraction, seed=seed,
                         val_fold=val_fold, normalize=normalize,
                         num_workers=num_workers, eval_batch_size=eval_batch_size, resample=resample)
        download = flag(download, "download")  # "false" (a JSON --data spec) let aeon fetch a set
        if name not in UCR_DATASETS:
            import difflib  # noqa: PLC0415

            close = difflib.get_close_matches(str(name), UCR_DATASETS, n=3)
            hint = f"; did you mean {close}?" if close else ""
            if close or not download:
                raise ValueError(f"name: expected one of the sets aeon ships {UCR_DATASETS}, got {name!r}{hint} "
                                 "(another UCR/UEA set: download=True lets aeon fetch it; on the command line "
                                 "--data.init_args.download true, in a JSON data-module spec \"download\": true)")
        self.name = name
        self.download = download

    def load(self) -> dict[str, tuple]:
        try:
            from aeon.datasets import load_classification  # noqa: PLC0415
        except ImportError as e:
            raise ImportError("UCRDataModule: needs the aeon package (pip install 'neuroview[data]')") from e
        out = {}
        for split in ("train", "test"):
            x, y = load_classification(self.name, split=split)
            out[split] = (x if isinstance(x, list) else np.asarray(x), y)  # float32 after centering (stats.centered_for_float32)
        return out

