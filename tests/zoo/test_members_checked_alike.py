"""``members`` and ``batched`` are checked alike by every architecture and every member count (the ensembles probe):
an RNN or MiniRocket took ``members=True`` / ``1.0`` (both equal 1) without a word, a one-network build dropped a
``batched`` typo unread, and an ensemble of non-NeuroView members lost its ``sites`` message to nn.Module's lookup."""

import pytest
import torch

import neuroview as nv


@pytest.mark.parametrize("arch,kw", [("nv_gru", {"max_len": 20}), ("nv_lstm", {"max_len": 20}), ("minirocket", {}),
                                     ("nv_lite", {})])
@pytest.mark.parametrize("members", [True, 1.0])
def test_members_that_only_equal_one_are_refused_everywhere(arch, kw, members):
    with pytest.raises(ValueError, match=r"members: expected an int >= 1, got (True|1\.0)"):
        nv.create_model(arch, members=members, **kw)


@pytest.mark.parametrize("arch", ["nv_lite", "nv_small_cnn", "lite"])
@pytest.mark.parametrize("batched", ["yes", 7])
def test_a_batched_typo_is_refused_with_one_member(arch, batched):
    with pytest.raises(ValueError, match="batched: expected true, false or 'auto'"):
        nv.create_model(arch, batched=batched)


def test_valid_options_still_build():
    assert isinstance(nv.create_model("nv_lite", batched="auto"), nv.NeuroViewCNN)
    assert isinstance(nv.create_model("nv_gru", max_len=20, members=1), nv.NeuroViewRNN)


def test_sites_of_standard_members_names_why():
    ens = nv.create_model("lite", members=2)
    with pytest.raises(AttributeError, match="sites: the members are not NeuroView-CNNs"):
        ens.sites
    assert getattr(ens, "sites", "default") == "default"  # still an AttributeError: getattr's default holds
    ens(torch.randn(2, 1, 32))  # and the rest of the lookup is nn.Module's
