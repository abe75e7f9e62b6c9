"""The checking code of benchmarks/sweep_backbones.py, on look-alike models (no timing, no torchvision/timm),
and where benchmarks/ucr_accuracy.py reads its runs.

The sweep classifies each wrapped backbone as right / wrong / error; these pin that a channels-last
ConvNeXt block and a class-token ViT come out right, and that the checker catches a token axis
taken for the unit axis and a backbone with only functional activations.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import neuroview as nv


@pytest.fixture(scope="module")
def sweep(benchmark_script):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: one thread is fastest, and on shared cores far more so
    try:
        yield benchmark_script("sweep_backbones"), benchmark_script("vision_models")
    finally:
        torch.set_num_threads(threads)


def test_convnext_channels_last_block_is_right_at_two_sizes(sweep):
    sb, vm = sweep
    torch.manual_seed(0)
    model = vm.ConvNeXt(dims=(8, 16, 24, 32), depths=(1, 1, 2, 1), num_classes=7)  # torchvision's layout, small
    r = sb.check_model(model, (3, 32, 32))
    assert r["status"] == "right", r
    assert r["second_size"] == [3, 64, 64]
    # units: the hidden features of every block's first Linear, on the last dim
    hidden = sum(m.block[3].out_features for m in model.modules() if isinstance(m, vm.CNBlock))
    assert r["units"] == r["expected_units"] == hidden
    assert r["axes"] == {"-1": 5}
    assert r["gap"] <= 1e-4 and r["gap_second_size"] <= 1e-4


def test_vit_with_class_token_is_right_and_tokens_are_not_units(sweep):
    sb, vm = sweep
    torch.manual_seed(0)
    vit = vm.VisionTransformer(image_size=32, patch=8, depth=2, heads=2, dim=16, hidden=40, num_classes=1000)
    r = sb.check_model(vit, (3, 32, 32))
    assert r["status"] == "right", r
    assert r["units"] == 2 * 40 and "second_size" not in r  # fixed position embedding: one input size
    # forcing the token axis (17 tokens) as the unit axis must be caught: the wrapper refuses it itself now (the
    # producing Linear's 40 features fit dim -1 only), before the sweep's flow check would call it wrong
    bad = vm.VisionTransformer(image_size=32, patch=8, depth=2, heads=2, dim=16, hidden=40, num_classes=1000)
    r = sb.check_model(bad, (3, 32, 32), wrap_kwargs={"unit_axis": {"layers.0.mlp.1": 1, "layers.1.mlp.1": 1}})
    assert r["status"] == "error" and "unit_axis: got 1 for site 'layers.0.mlp.1', but its input has shape (2, 17, 40), " \
        "made by a layer with 40 features, which fit dim -1 only" in r["message"], r


def test_functional_activations_are_an_error_and_a_broken_model_is_blamed(sweep):
    sb, _ = sweep

    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return F.relu(self.conv(x)).mean((2, 3))

    r = sb.check_model(Functional(), (3, 8, 8))
    assert (r["status"], r["stage"], r["blame"]) == ("error", "wrap", "neuroview")

    r = sb.check_model(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5)), (3, 9, 9))
    assert (r["status"], r["stage"], r["blame"]) == ("error", "model", "model")  # 9x9 input: the Linear expects 8x8


def test_probe_finds_the_producing_layer_by_identity(sweep):
    sb, _ = sweep
    model = nn.Sequential(nn.Conv2d(3, 6, 3), nn.BatchNorm2d(6), nn.ReLU(), nn.Flatten(1), nn.Linear(6 * 8, 9), nn.GELU())
    calls = sb.probe(model, torch.randn(2, 3, 4, 6))
    assert calls["2"][0] == {"shape": (2, 6, 2, 4), "producer": "1", "features": 6, "how": "identity"}
    assert calls["5"][0]["producer"] == "4" and calls["5"][0]["features"] == 9
    assert sb.second_size((3, 224, 224)) == (3, 288, 288) and sb.second_size((3, 299, 299)) == (3, 384, 384)


def test_probe_takes_the_enclosing_norm_of_a_norm_act_module(sweep):
    sb, _ = sweep

    class BatchNormAct2d(nn.BatchNorm2d):  # timm's: the activation runs inside the norm's forward
        def __init__(self, c):
            super().__init__(c)
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(super().forward(x))

    class Dense(nn.Module):  # DenseNet: the norm-act reads a concatenation, not a layer's output
        def __init__(self):
            super().__init__()
            self.a, self.b, self.norm = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 2, 1), BatchNormAct2d(6)

        def forward(self, x):
            return self.norm(torch.cat([self.a(x), self.b(x)], 1))

    calls = sb.probe(Dense(), torch.randn(2, 3, 5, 5))
    assert calls["norm.act"][0] == {"shape": (2, 6, 5, 5), "producer": "norm", "features": 6, "how": "enclosing"}


def test_flow_places_units_by_what_tensors_are_not_by_the_last_layer_run(sweep):
    # the sweep's own rule (benchmarks/unit_flow.py), independent of the wrapper's: a concatenation
    # adds its parts' units, a LayerNorm over [C, T] keeps the conv's, a chunk along the units splits
    # them, a permute moves them, and a layer reading merged attention heads says how many it reads
    import unit_flow as uf

    class Cases(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 8, 1), nn.Conv2d(3, 8, 1)
            self.cat_act = nn.ReLU()
            self.ln_conv, self.ln, self.ln_act = nn.Conv1d(3, 5, 1), nn.LayerNorm([5, 8]), nn.GELU()
            self.fc, self.chunk_act = nn.Linear(3, 2 * 6), nn.SiLU()
            self.proj, self.heads_act = nn.Linear(3, 4 * 2), nn.ReLU()
            self.out = nn.Linear(8, 2)

        def forward(self, x):  # x [B, 3, 12, 8]
            self.cat_act(torch.cat([self.a(x), self.b(x)], 1))
            self.ln_act(self.ln(self.ln_conv(x.mean(2))))  # [B, 5, 8]: units are the 5 channels
            g, _ = self.fc(x.permute(0, 2, 3, 1)).chunk(2, dim=-1)  # channels last, split in two
            self.chunk_act(g)
            h = self.proj(x.flatten(2).transpose(1, 2)).unflatten(-1, (4, 2)).transpose(1, 2) @ torch.ones(2, 2)
            return self.out(self.heads_act(h.transpose(1, 2).flatten(2)))  # heads merged: no layer produced it

    for seed in range(8):  # several draws: a freed tensor's reused id once hid the heads' consumer, now and then
        torch.manual_seed(seed)
        t = uf.trace(Cases(), torch.randn(2, 3, 12, 8))
        assert t["cat_act"][0]["expect"] == (16, 1)
        assert t["ln_act"][0]["expect"] == (5, 1)
        assert t["chunk_act"][0]["expect"] == (6, 3)
        assert t["heads_act"][0]["expect"] is None and t["heads_act"][0]["consumer"] == (8, 2), seed
    assert uf.verdict(-1, 8, (2, 16, 12, 8), (16, 1), None)[0] == "wrong"
    assert uf.verdict(1, 16, (2, 16, 12, 8), (16, 1), None) == ("right", "the flow")
    assert uf.verdict(1, 16, (2, 16, 12, 8), None, None)[0] == "unverified"


def test_a_forced_key_the_wrapper_cannot_refuse_is_called_wrong_by_the_flow(sweep):
    # a Mixer's residual stream (untagged after its patches' flatten): a key reading its 16 tokens as units cannot be
    # refused by the wrapper, and the sweep's flow check says it is wrong (the look-alikes above are refused now)
    sb, _ = sweep

    class Mixer(nn.Module):
        def __init__(self):
            super().__init__()
            self.pe, self.ln1, self.t1, self.tact, self.t2 = nn.Conv2d(1, 8, 2, 2), nn.LayerNorm(8), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 16)
            self.act_out, self.f3 = nn.ReLU(), nn.Linear(8, 8)

        def forward(self, x):
            x = self.pe(x).flatten(2).transpose(1, 2)
            x = x + self.t2(self.tact(self.t1(self.ln1(x).transpose(1, 2)))).transpose(1, 2)
            return self.f3(self.act_out(x)).mean(1)

    assert sb.check_model(Mixer(), (1, 8, 8), second=False)["status"] == "right"
    r = sb.check_model(Mixer(), (1, 8, 8), wrap_kwargs={"unit_axis": {"act_out": 1}}, second=False)
    assert r["status"] == "wrong" and "16 units on dim 1 of [2, 16, 8], the flow says 8 on dim 2" in r["reason"], r


def test_concatenation_read_on_the_wrong_axis_is_wrong(sweep):
    # ReLU(cat([a, b], 1)) on a 12x8 input: 16 channels; the last axis (8 columns) is not the units
    sb, _ = sweep

    class CatNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.act = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()

        def forward(self, x):
            return self.act(torch.cat([self.a(x), self.b(x)], 1)).mean((2, 3))

    r = sb.check_model(CatNet(), (3, 12, 8), wrap_kwargs={"unit_axis": {"act": -1}}, second=False)
    assert r["status"] == "error" and "unit_axis: got -1 for site 'act'" in r["message"] \
        and "made by a layer with 16 features, which fit dim 1 only" in r["message"], r  # refused by the wrapper now
    r = sb.check_model(CatNet(), (3, 12, 8), wrap_kwargs={"unit_axis": {"act": 1}}, second=False)
    assert r["status"] == "right" and r["sites_by_flow"] == {"right": 1, "wrong": 0, "unverified": 0}, r


def test_a_comment_edit_keeps_a_recipes_version_and_a_setting_edit_does_not(tmp_path, monkeypatch, benchmark_script):
    ua = benchmark_script("ucr_accuracy")
    monkeypatch.setattr(ua, "ROOT", tmp_path)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model:\n  lr: 1.0e-3  # chosen on validation\n")
    old = ua._sha("r.yaml")
    monkeypatch.setattr(ua, "SAME_SETTINGS", {"r.yaml": {"since": old, "settings": ua._settings("r.yaml")}})
    recipe.write_text("# a new line of comment\nmodel:\n  lr: 0.001    # chosen on validation, 3 seeds\n")
    assert ua._sha("r.yaml") == old  # the same settings: the runs stand
    recipe.write_text("model:\n  lr: 1.0e-4  # chosen on validation\n")
    assert ua._sha("r.yaml") not in (old, None)  # a setting changed: a new version
    recipe.write_text("model:\n  lr: 1.0e-3\n  model_kwargs: {batched: true}\n")
    assert ua._sha("r.yaml") == old  # how it is computed, not what: the runs stand
    recipe.write_text("model:\n  lr: 1.0e-3\n  model_kwargs: {batched: true, members: 5}\n")
    assert ua._sha("r.yaml") != old  # five members are another recipe
    monkeypatch.setattr(ua, "SAME_SETTINGS", {})
    recipe.write_text("model:\n  lr: 1.0e-3  # chosen on validation\n")
    assert ua._sha("r.yaml") == old  # without an entry the version is the file's bytes


def test_every_same_settings_entry_stands_for_its_recipe_as_it_is(benchmark_script):
    # an entry whose recipe's settings have moved on stands for nothing: the runs of its version are stale
    # and the entry must go, or the next comment edit of that recipe would not know which runs it keeps
    ua = benchmark_script("ucr_accuracy")
    assert ua.SAME_SETTINGS
    for recipe, entry in ua.SAME_SETTINGS.items():
        assert ua._settings(recipe) == entry["settings"], recipe
        assert ua._sha(recipe) == entry["since"], recipe


def test_ucr_accuracy_table_reads_the_results_file_it_is_given(tmp_path, capsys, benchmark_script):
    # GPU runs go to a file of their own (--results): the table must come from that file alone,
    # and only from runs of the recipe as it is now (its SHA-256)
    ua = benchmark_script("ucr_accuracy")
    recipe = "recipes/ucr_nv_cnn.yaml"
    run = {"recipe": recipe, "set": "GunPoint", "sha": ua._sha(recipe), "test_acc": 0.123, "seconds": 7.0}
    runs = {"ucr_nv_cnn@GunPoint@0": run | {"seed": 0},
            "ucr_nv_cnn@GunPoint@1": run | {"seed": 1, "test_acc": 0.456, "sha": "an-older-recipe"}}
    gpu = tmp_path / "gpu.json"
    ua.save(runs, gpu)
    default = ua.OUT.read_bytes()
    assert ua.main(["--table", "--results", str(gpu), "--recipes", recipe, "--sets", "GunPoint"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| GunPoint"))
    assert "| 12.3 (1) |" in row and "45.6" not in row
    assert ua.OUT.read_bytes() == default  # the default cache is neither read into it nor written


def test_ucr_ensemble_averages_logits_and_is_one_linear_neuroview_decision(benchmark_script):
    ue = benchmark_script("ucr_ensemble")
    # hand-built: each member gets one of the two series wrong, their mean gets both right
    a = {"logits": [[2.0, 0.0], [1.0, 0.0]], "labels": [0, 1]}
    b = {"logits": [[0.0, 1.0], [0.0, 3.0]], "labels": [0, 1]}
    assert ue.ensemble_acc([a]) == ue.ensemble_acc([b]) == 0.5
    assert ue.ensemble_acc([a, b]) == 1.0
    with pytest.raises(ValueError, match="members"):
        ue.ensemble_acc([a, b | {"labels": [1, 1]}])
    # the script's premise: averaged NeuroView logits are one linear classifier over all members'
    # unit codes (weights divided by the number of members), so its explanations stay exact
    torch.manual_seed(0)
    x = torch.randn(4, 1, 48)
    members = [nv.create_model("nv_lite", num_classes=3, in_channels=1).eval() for _ in range(3)]
    for m in members:
        m(x)  # finds its sites
    codes = torch.cat([m.codes(x) for m in members], dim=1)
    w = torch.cat([m.effective_classifier()[0] for m in members], dim=1) / len(members)
    b = torch.stack([m.effective_classifier()[1] for m in members]).mean(0)
    mean_logits = torch.stack([m(x) for m in members]).mean(0)
    torch.testing.assert_close(codes @ w.T + b, mean_logits, rtol=0, atol=1e-5)
    contributions = codes[:, None, :] * w  # [B, C, U]: per unit of every member
    torch.testing.assert_close(contributions.sum(-1) + b, mean_logits, rtol=0, atol=1e-5)


def test_ucr_ensemble_validation_table_reads_val_runs_and_no_test_figure(benchmark_script):
    ue = benchmark_script("ucr_ensemble")
    recipe = "recipes/ucr_nv_cnn.yaml"
    # two members scored on one validation split: each gets one series wrong, their mean none
    logits = ([[2.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 3.0]])
    runs = {ue._key(recipe, "GunPoint", i): {"recipe": recipe, "set": "GunPoint", "seed": i, "sha": ue._sha(recipe),
                                              "val_acc": 0.5, "val_fraction": 0.2, "logits": z, "labels": [0, 1]}
            for i, z in enumerate(logits)}
    row = ue.table([recipe], ["GunPoint"], [0, 1], runs, size=2).splitlines()[-1]
    # members 50.0 ± 0.0 (2), one ensemble of two at 100.0 (1); MiniRocket's test figure left out
    assert row == "| GunPoint | 50.0 ± 0.0 (2) | 100.0 (1) |  |", row


# ----------------------------------------------------------- benchmarks/synthetic_window.py
@pytest.fixture(scope="module")
def synthetic(benchmark_script):
    return benchmark_script("synthetic_window")


def test_synthetic_class_signal_lies_only_in_the_window(synthetic):
    x, y = synthetic.make_data(64, length=50, window=(20, 34), width=10, noise=0.0, seed=3)
    assert x.shape == (64, 1, 50) and torch.bincount(y).tolist() == [16] * 4
    assert x[..., :20].abs().max() == 0 and x[..., 34:].abs().max() == 0
    assert bool((x[..., 20:34].abs().amax(-1) > 1.0).all())  # every series carries its shape (amplitude >= 2)
    # with noise, outside the window nothing depends on the class: same draws whatever the labels
    xn, yn = synthetic.make_data(64, length=50, window=(20, 34), width=10, seed=3)
    torch.testing.assert_close(xn[..., :20], synthetic.make_data(64, length=50, window=(20, 34), width=10, seed=3)[0][..., :20])
    assert torch.equal(yn, y)
    with pytest.raises(ValueError, match="window"):
        synthetic.make_data(4, length=50, window=(45, 55))


def test_window_share_on_hand_built_evidence(synthetic):
    ev = torch.tensor([[1.0, -1.0, 2.0, 0.0, 0.0, 4.0],    # |.| = 8, window [1, 3): 3 -> 3/8
                       [0.0, 0.0, -5.0, 0.0, 0.0, 0.0],    # all of it inside
                       [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])    # no evidence: NaN, not 0
    share = synthetic.window_share(ev, (1, 3))
    assert share[:2].tolist() == [3 / 8, 1.0] and torch.isnan(share[2])
    mask = torch.tensor([False, True, True, False, False, False])
    torch.testing.assert_close(synthetic.window_share(ev, mask), share, equal_nan=True)


def test_rnn_evidence_is_exact_and_sits_where_the_weights_are(synthetic):
    # a NeuroView-GRU whose classifier reads only steps 4..7: every decision's evidence lies there
    torch.manual_seed(0)
    net = nv.NeuroViewRNN(nn.GRU(1, 3, batch_first=True), 2, max_len=12, normalize=False).eval()
    with torch.no_grad():
        w = net.classifier.weight.view(2, 12, 3)
        w[:, :4] = 0
        w[:, 8:] = 0
    x = torch.randn(6, 1, 12)  # channels-first, as the script holds its series
    ev, pred = synthetic.neuroview_evidence(net, x)
    logits = net(x.transpose(1, 2))
    torch.testing.assert_close(ev.sum(1) + net.classifier.bias[pred], logits.gather(1, pred[:, None])[:, 0])
    assert synthetic.window_share(ev, (4, 8)).tolist() == [1.0] * 6
    # against a baseline the evidence still sums to the logit (the bias is the baseline's logit)
    base = synthetic.mean_features(net, torch.randn(20, 1, 12))
    evb, _ = synthetic.neuroview_evidence(net, x, base)
    exp = net.explain(x.transpose(1, 2), baseline=base)
    torch.testing.assert_close(evb.sum(1) + exp.bias[pred], logits.gather(1, pred[:, None])[:, 0])
    # a GRU's state at t has read every step up to t: the window's reach runs to the end
    assert synthetic.reach(net, x, (4, 8)).nonzero().flatten().tolist() == list(range(4, 12))


def test_cnn_evidence_maps_positions_to_steps_and_reach_is_the_receptive_field(synthetic):
    torch.manual_seed(0)
    body = nn.Sequential(nn.Conv1d(1, 4, 3, padding="same"), nn.ReLU(), nn.Conv1d(4, 5, 3, padding="same"), nn.ReLU())
    net = nv.NeuroViewCNN(body, 3, quantizer="none", example_input=torch.zeros(2, 1, 16)).eval()
    x = torch.randn(5, 1, 16)
    ev, pred = synthetic.neuroview_evidence(net, x)
    exp = net.explain(x)
    assert ev.shape == (5, 16)
    torch.testing.assert_close(ev.sum(1), exp.for_class(pred).sum(1))
    # two kernels of 3: a position reads 2 steps either side of it
    assert synthetic.reach(net, x, (6, 9)).nonzero().flatten().tolist() == list(range(4, 11))
    pooled = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 3, example_input=torch.zeros(2, 1, 16)).eval()
    with pytest.raises(ValueError, match="not the input's 16 steps"):
        synthetic.neuroview_evidence(pooled, x)  # 14 positions: no honest step for each


def test_synthetic_benchmark_end_to_end_on_a_tiny_set(synthetic, monkeypatch, tmp_path):
    # nv.sparsify is replaced by a head that reads only the window's steps (sparsify has its own
    # tests, and its path takes seconds): the sparse rows must then put all evidence in the window
    import copy

    def window_head(net, x, y, val, seed):
        sparse = copy.deepcopy(net)
        with torch.no_grad():
            w = sparse.classifier.weight.view(net.num_classes, net.max_len, -1)
            w[:, :4] = 0
            w[:, 16:] = 0
        return sparse.eval(), "window head (test)"

    monkeypatch.setattr(synthetic, "sparsify", window_head)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = synthetic.main(["--models", "gru", "--seeds", "1", "--train", "32", "--val", "16", "--test", "8",
                              "--length", "20", "--window-start", "4", "--window", "12", "--gru-epochs", "1",
                              "--n-steps", "2", "--out", str(tmp_path / "sw")])
    finally:
        torch.set_num_threads(threads)
    run = out["results"]["gru"][0]
    assert run["share"]["uniform (reference)"] == pytest.approx(12 / 20)
    assert run["share"]["NeuroView sparse, zero baseline"] == 1.0
    assert run["share"]["NeuroView sparse, mean baseline"] == 1.0
    assert run["used"] == {"dense": 20.0, "sparse": 12.0}
    assert run["reach"] == [4, 19]  # a forward GRU: from the window's first step to the end
    assert all(0.0 <= v <= 1.0 for v in run["share"].values())
    md = (tmp_path / "sw.md").read_text()
    assert "| NeuroView sparse, zero baseline | 100.0% | 100.0% |" in md
    assert json.loads((tmp_path / "sw.json").read_text())["meta"]["window_steps"] == [4, 16]


def test_ucr_duplicates_groups_near_identical_series_across_classes(benchmark_script):
    ud = benchmark_script("ucr_duplicates")
    rng = np.random.default_rng(0)
    base = rng.normal(size=(4, 1, 30))
    # 0 and 4 differ by 1e-3 a step (mean squared 1e-6), classes a and b; 1 and 5 likewise, both a
    x = np.concatenate([base, base[:2] + 1e-3])
    y = np.array(["a", "a", "b", "c", "b", "a"])
    r = ud.report(x, y, 1e-4)
    assert r["mixed_groups"] == [(2, ["a", "b"])] and r["series_in_mixed"] == 2
    assert r["accuracy_bound"] == 5 / 6  # the mixed pair can give only one of its two labels
    assert ud.report(x, y, 1e-9)["mixed_groups"] == [] and ud.report(x, y, 1e-9)["accuracy_bound"] == 1.0
    assert sorted(map(sorted, ud.groups(x, 1e-4))) == [[0, 4], [1, 5], [2], [3]]


def test_bn_gap_recomputed_statistics_are_the_training_split_s_and_restore_a_wrong_model(benchmark_script):
    bg = benchmark_script("bn_gap")
    torch.manual_seed(0)
    # two classes told apart by the sign of x - 5: right only if BatchNorm centres x on its true mean 5
    # (pairs 5 - d, 5 + d: every batch below holds whole pairs, so its own mean is 5 too)
    d = torch.rand(32, 1) + 0.1
    x = 5 + torch.cat([-d, d])
    y = torch.cat([torch.zeros(32), torch.ones(32)]).long()
    bn = torch.nn.BatchNorm1d(1, affine=False, momentum=0.5)
    lin = torch.nn.Linear(1, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[-1.0], [1.0]]))
        lin.bias.zero_()
    model = torch.nn.Sequential(bn, lin)
    bn.running_mean.fill_(-3.0)  # statistics that do not match the data: every sample reads as class 1
    loader = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]
    shuffled = [(x[p], y[p]) for p in (torch.cat([g, g + 32]) for g in torch.randperm(32).split(8))]
    assert bg.accuracy(model, loader) == 0.5
    assert bg.accuracy(model, shuffled, train_mode=True) == 1.0  # each batch's own statistics
    assert bn.running_mean.item() == -3.0 and not model.training  # measuring left the model as it was
    assert bg.recompute_statistics(model, shuffled) == 1
    # the cumulative average of the four batches' statistics: their means, and unbiased variances
    torch.testing.assert_close(bn.running_mean, torch.stack([b.mean() for b, _ in shuffled]).mean().reshape(1))
    torch.testing.assert_close(bn.running_var, torch.stack([b.var() for b, _ in shuffled]).mean().reshape(1))
    assert bn.momentum == 0.5 and not model.training
    assert bg.accuracy(model, loader) == 1.0


def test_ucr_ensemble_verdict_needs_every_set_and_the_margin(benchmark_script):
    ue = benchmark_script("ucr_ensemble")
    recipe = "recipes/ucr_nv_cnn.yaml"
    right, wrong = [[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]

    def runs_of(per_set):  # set -> the members' logits on the two series (labels 0, 1)
        return {ue._key(recipe, s, i): {"sha": ue._sha(recipe), "val_acc": sum(
                    max(range(2), key=row.__getitem__) == t for row, t in zip(z, [0, 1])) / 2, "logits": z, "labels": [0, 1]}
                for s, zs in per_set.items() for i, z in enumerate(zs)}

    # set A: members 100, 100, 0 (mean 66.7); the two confident right members outweigh the wrong one
    sure = [[3.0, 0.0], [0.0, 3.0]]
    runs = runs_of({"A": [sure, sure, wrong], "B": [right, right, right]})
    v = ue.verdict(recipe, ["A", "B"], runs, size=3)
    # ensemble: A 100 (sure outweighs wrong), B 100 -> 100 against members (66.7 + 100) / 2 = 83.3
    assert v["verdict"] == "members: 3" and v["members"] == pytest.approx(250 / 3) and v["ensemble"] == 100.0
    assert ue.verdict(recipe, ["A", "B", "C"], runs, size=3)["verdict"] == "not run yet"  # a set with no run
    level = runs_of({"A": [right, right, right], "B": [right, right, right]})
    assert ue.verdict(recipe, ["A", "B"], level, size=3)["verdict"] == "one network"  # 100 against 100
    stale = {k: r | {"sha": "another version"} for k, r in runs.items()}
    assert ue.verdict(recipe, ["A", "B"], stale, size=3)["sets"] == "0 / 2"


def test_ucr_ensemble_verdict_is_kept_among_the_choices_and_listed_by_them(benchmark_script, tmp_path, monkeypatch):
    ue = benchmark_script("ucr_ensemble")
    import ucr_choices as ch  # the module ucr_ensemble reads (benchmarks/ is on the path)

    monkeypatch.setattr(ch, "VERDICTS", tmp_path / "verdicts.json")
    monkeypatch.setattr(ue, "RESULTS", tmp_path)  # keep_verdict's lock too: tests write only under tmp_path
    recipe = "recipes/ucr_cnn.yaml"
    one = {"sha": ue._sha(recipe), "val_acc": 1.0, "logits": [[1.0, 0.0]], "labels": [0]}
    runs = {ue._key(recipe, s, i): one for s in ue.VAL_SETS for i in range(2)}
    assert ue.keep_verdict(recipe, {k: v for k, v in runs.items() if "GunPoint" not in k}, size=2) is None  # a set missing
    row = ue.keep_verdict(recipe, runs, size=2)
    assert row["verdict"] == "keep" and row["runs"] == f"{2 * len(ue.VAL_SETS)} / {2 * len(ue.VAL_SETS)}"
    rows = ch.kept({})
    assert rows[-1] == row and sum(r["option"] == "members (CNN)" for r in rows) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [".manifest.lock", "verdicts.json"]  # what it wrote, all here


def test_sparse_ensemble_reads_one_head_over_the_members_and_tables_by_set(benchmark_script, monkeypatch, tmp_path):
    import numpy as np

    import neuroview as nv
    from neuroview.data import NpzDataModule

    se = benchmark_script("sparse_ensemble")
    rng = np.random.default_rng(0)
    y = np.arange(120) % 2
    x = rng.standard_normal((120, 1, 30)).astype(np.float32)
    x[:, 0, 5:12] += 2.0 * y[:, None]  # the class lives in samples 5..11
    np.savez(tmp_path / "d.npz", X=x, y=y)
    dm = NpzDataModule(str(tmp_path / "d.npz"), batch_size=16, val_fraction=0.0)
    dm.setup("fit")
    torch.manual_seed(0)
    net = nv.create_model("nv_lite", num_classes=2, in_channels=1, members=3)
    net.train()(torch.as_tensor(x[:16]))  # one batch of statistics; the sites found
    monkeypatch.setattr(se, "_trained", lambda dataset, seed: (net.eval(), dm))
    row = se.measure("Planted", 0)
    assert 1 <= row["members_read"] <= 3 and row["units_per_class"] < row["dense_units"] == 3 * 194
    assert row["set"] == "Planted" and row["sha"] == se._sha(se.RECIPE) and 0 <= row["sparse_acc"] <= 100
    runs = {"a": row, "b": row | {"seed": 1, "sparse_acc": row["sparse_acc"] - 2.0}, "c": row | {"sha": "older"}}
    line = next(r for r in se.table(runs).splitlines() if r.startswith("| Planted"))
    assert line.split("|")[2].strip() == "2"  # the two runs of the recipe as it is; the older version left out
    drop = row["dense_acc"] - row["sparse_acc"]  # and 2 points more on seed 1: their mean and std
    assert line.split("|")[5].strip() == f"{drop + 1.0:.1f} ± 1.0"


def test_ensemble_cost_counts_convolutions_and_nothing_else(benchmark_script):
    ec = benchmark_script("ensemble_cost")
    cpu = torch.device("cpu")
    x, w, m = torch.randn(2, 3, 40, requires_grad=True), torch.randn(4, 3, 5), torch.randn(40, 40)
    assert ec.conv_share(lambda: (x @ m).sum().backward(), cpu, n=2) == 0.0  # no convolution at all
    conv = ec.conv_share(lambda: torch.nn.functional.conv1d(x, w).sum().backward(), cpu, n=2)
    assert 0.0 < conv <= 1.0
    step, explain = ec._jobs(2, 4, 24, cpu)  # the two jobs run: the module's step of an ensemble, its explain
    step()
    explain()



def test_ensemble_cost_steps_run_apart_and_batched(benchmark_script):
    ec = benchmark_script("ensemble_cost")
    for step in ec._std_steps(2, 4, 24, torch.device("cpu")):  # one LITE, two apart, two batched: each runs
        step()
    step, _ = ec._jobs(2, 4, 24, torch.device("cpu"), batched=True)
    step()
    # the grouped step under torch.compile (what --compile reduce-overhead times on a GPU): one graph, no break
    torch._dynamo.reset()
    counts = torch._dynamo.utils.counters
    counts.clear()
    step, _ = ec._jobs(2, 4, 24, torch.device("cpu"), batched=True, compile="aot_eager")
    step()
    step()
    assert counts["stats"]["unique_graphs"] == 1 and not counts["graph_break"]


def test_depthwise_cost_times_every_route_and_leaves_the_default_on(benchmark_script, monkeypatch):
    dc = benchmark_script("depthwise_cost")
    from neuroview.zoo.architectures import timeseries

    seen = []
    real = timeseries._DepthwisePhases.apply
    monkeypatch.setattr(timeseries._DepthwisePhases, "apply", lambda *a: seen.append(timeseries.CPU_DEPTHWISE) or real(*a))
    row = dc.measure("nv_lite x5 batched", 2, 30, rounds=1)
    assert all(row[f"{j}_{r}_ms"] > 0 for j in ("step", "forward") for r in dc.ROUTES)
    assert set(seen) == {"phases"} and timeseries.CPU_DEPTHWISE == "phases"  # only its own route took the phases
    assert "phases / native" in dc.table([row])
