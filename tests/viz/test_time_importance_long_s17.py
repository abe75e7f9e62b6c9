"""``plots.time_importance`` on long series: a filled step line past 400 steps, every step in its data.

Scale probe s17, finding 4: at 5,000 steps it drew 25,000 bars of 0.16 px (about 14 s), which showed steps that all
add something as scattered spikes with gaps. The weights here are a hand-built tensor, so the values each step must
carry are known.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402

from neuroview.viz import plots  # noqa: E402


def _rows(t: int) -> torch.Tensor:
    """Two classes; class 0 is +1 at odd steps and -2 at even ones (every step non-zero), class 1 is 0 but for +5 at
    one step, a spike a bar of a fifth of a pixel lost."""
    w = torch.zeros(2, t)
    w[0] = torch.where(torch.arange(t) % 2 == 1, 1.0, -2.0)
    w[1, t // 3] = 5.0
    return w


def _drawn(ax) -> dict[str, np.ndarray]:
    """The step lines of a panel by colour: x and y of each vertex."""
    return {matplotlib.colors.to_hex(line.get_color()): np.asarray(line.get_xydata()) for line in ax.get_lines()
            if line.get_drawstyle() == "steps-mid"}


def test_a_long_row_is_a_step_line_whose_data_holds_every_step():
    t = 3000
    fig = plots.time_importance(_rows(t))
    for ax, row in zip(fig.axes[:2], _rows(t)):
        assert not ax.patches  # no bar per step
        lines = _drawn(ax)
        pos, neg = lines["#b2182b"], lines["#2166ac"]  # red above 0, blue below
        steps = np.arange(t)
        assert np.array_equal(pos[:, 0], steps) and np.array_equal(neg[:, 0], steps)
        assert np.array_equal(pos[:, 1] + neg[:, 1], row.numpy())  # every step's value, its sign in its colour
        assert len(ax.collections) == 2  # the two filled areas
    assert fig.axes[1].get_xlim() == (-0.5, t - 0.5)


def test_a_spike_narrower_than_a_pixel_leaves_paint_in_the_picture():
    """Step t // 3 of class 1 is +5, all others 0: the rendered panel has red pixels in the spike's column."""
    t = 5000
    fig = plots.time_importance(_rows(t))
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    img = np.asarray(canvas.buffer_rgba())[..., :3].astype(int)
    ax = fig.axes[1]
    x, _ = ax.transData.transform((t // 3, 0))
    y0, y1 = ax.transData.transform((0, 0.5))[1], ax.transData.transform((0, 4.5))[1]
    h = img.shape[0]
    column = img[int(h - y1):int(h - y0), int(x) - 1:int(x) + 2]  # rows top-down
    red = (column[..., 0] > 150) & (column[..., 1] < 120) & (column[..., 2] < 120)
    assert red.any(axis=1).mean() > 0.9


@pytest.mark.parametrize("t", [12, 400])
def test_short_rows_stay_one_bar_per_step(t):
    fig = plots.time_importance(_rows(t))
    assert len(fig.axes[0].patches) == t
