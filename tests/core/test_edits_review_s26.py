"""Review R4 of bcd094e, findings 3 and 4: a backbone that builds a module in its first forward is not refused as
edited at its next pass (its sites are found on the model that forward built), and the PathChanged of an edited
Ensemble member names the member."""

import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.core.hooks import PathChanged


class _BuildsInForward(nn.Module):
    """The lazy-build pattern: ``extra`` (a conv and a ReLU) is made by the first forward."""

    def __init__(self):
        super().__init__()
        self.c, self.a0, self.fc = nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Linear(4, 2)

    def forward(self, x):
        if "extra" not in self._modules:
            self.extra = nn.Sequential(nn.Conv2d(4, 4, 1), nn.ReLU())
        return self.fc(self.extra(self.a0(self.c(x))).mean((2, 3)))


@pytest.mark.parametrize("how", ["lazy", "example_input"])
def test_a_module_built_by_the_first_forward_is_a_site_and_later_passes_run(how):
    torch.manual_seed(0)
    x = torch.randn(4, 3, 8, 8)
    bb = _BuildsInForward()
    net = (nv.wrap(bb, num_classes=2) if how == "lazy" else nv.NeuroViewCNN(bb, 2, example_input=x)).eval()
    outs = [net(x) for _ in range(3)]  # the second pass raised PathChanged "'extra.1' (ReLU) was added"
    assert torch.equal(outs[0], outs[2])
    # its units are read, not left out: the ReLU the first forward built is a site, as a model built before wrapping
    assert [(s.name, s.channels) for s in net.sites] == [("a0", 4), ("extra.1", 4)]


def _member(x):
    bb = nn.Sequential(nn.Conv1d(1, 2, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(2, 2))
    return bb, nv.NeuroViewCNN(bb, 2, example_input=x).eval()


def test_the_path_changed_of_an_edited_ensemble_member_names_the_member():
    torch.manual_seed(0)
    x = torch.randn(4, 1, 16)
    (_, m0), (bb1, m1) = _member(x), _member(x)
    ens = nv.Ensemble([m0, m1]).eval()
    ens(x)
    bb1.insert(0, nn.Identity())  # member 1's site '1' now sits at '2'
    with pytest.raises(PathChanged, match=r"^members\.1\.backbone: its modules were edited .*site '1' \(ReLU\) is now "
                                          r"at '2'.*ens\.members\[1\]"):
        nv.unit_gallery(ens, [x], units=[0], k=2)


def test_an_ensemble_s_own_pass_names_its_edited_member():
    # the batched pass runs the members' layers without their own checks: the ensemble checks each member first
    torch.manual_seed(0)
    x = torch.randn(4, 1, 16)
    (_, m0), (bb1, m1) = _member(x), _member(x)
    ens = nv.Ensemble([m0, m1]).eval()
    ens(x)
    bb1.insert(0, nn.Identity())
    for call in (ens, ens.codes):
        with pytest.raises(PathChanged, match=r"^members\.1\.backbone: its modules were edited .*site '1' \(ReLU\) is now"):
            call(x)
