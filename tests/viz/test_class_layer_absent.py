"""``class_layer_summary`` of an explanation whose labels leave a class without a sample: that row says
"(no sample)" and "–" rather than "nan", and the colour scale is set by the classes that have shares (a NaN row
made ``shares.max()`` NaN, so the scale fell back to 100% whatever the largest share)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from neuroview.viz.decision import class_layer_summary  # noqa: E402
from neuroview.core.explanation import CNNExplanation  # noqa: E402


def test_a_class_without_samples_is_named_and_the_scale_is_the_largest_share():
    # two layers of one unit each, three classes; contributions [sample, class, unit]
    contrib = torch.tensor([[[1.0, 3.0], [2.0, 2.0], [5.0, 5.0]],
                            [[1.0, 3.0], [4.0, 0.0], [5.0, 5.0]]])
    exp = CNNExplanation(contributions=contrib, bias=torch.zeros(3), logits=contrib.sum(-1),
                         units=[("a", 0), ("b", 0)], site_slices={"a": slice(0, 1), "b": slice(1, 2)})
    fig = class_layer_summary(exp, y=torch.tensor([0, 1]))  # no sample of class 2
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["class 0", "class 1", "class 2 (no sample)"]
    texts = [t.get_text() for t in ax.texts]
    assert "nan" not in texts and texts[-2:] == ["–", "–"]
    # shares by hand: class 0 reads sample 0 (|1|, |3|) -> 25, 75; class 1 reads sample 1 (|4|, |0|) -> 100, 0
    assert texts[:4] == ["25", "75", "100", "0"]
    assert ax.images[0].get_clim() == (0.0, 1.0)
    fig2 = class_layer_summary(exp, y=torch.tensor([0, 0]))  # largest share 0.75, classes 1 and 2 absent
    assert fig2.axes[0].images[0].get_clim() == (0.0, 0.75)
