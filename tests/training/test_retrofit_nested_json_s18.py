"""``neuroview retrofit --arch-kwargs`` nested past the JSON reader's depth is refused by name (a bare RecursionError),
as ``--data`` and ``explain --model-args`` are."""

from types import SimpleNamespace

import pytest

from neuroview.training.retrofit import _prepare


def test_arch_kwargs_nested_past_the_reader_is_refused_by_name():
    nested = "[" * 200_000 + "]" * 200_000
    args = SimpleNamespace(arch_kwargs=nested, source="small_cnn", arch=None, max_len=None)
    with pytest.raises(ValueError, match=r"^--arch-kwargs: expected a JSON object"):
        _prepare(args)
