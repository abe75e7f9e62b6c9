"""``plots.unit_gallery(class_names=y.unique())`` titles the classes by their values ('1'), as the tables do."""

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from neuroview.viz.gallery import _gallery_names  # noqa: E402


class _G:  # the fields _gallery_names reads
    class_means, kind, num_classes, y = None, "units", 2, None


def test_tensor_class_names_are_their_values():
    assert _gallery_names(_G(), torch.tensor([1, 2])) == ["1", "2"]
    assert _gallery_names(_G(), ["a", "b"]) == ["a", "b"]
