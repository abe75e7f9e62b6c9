"""Explanation tables as data (P6 findings 1, 2, 4; R4 findings 3-8): ``read_csv`` gives back the bools and Nones ``write_csv``
writes, ``CNNExplanation.topk`` lists no unit that adds nothing, and ``write_json`` takes the numbers ``write_csv``
takes. Every expected value is built here by hand, not by the code under test."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

import neuroview as nv
from neuroview.attribution import export


# ------------------------------------------------------------------- 1. bools and None read back as written
def test_read_csv_gives_back_the_bools_and_none_write_csv_writes(tmp_path):
    rows = [{"flag": True, "other": False, "code": None, "name": "x", "n": 3},
            {"flag": np.bool_(False), "other": True, "code": None, "name": "True", "n": 4}]
    path = export.write_csv(tmp_path / "t.csv", rows)
    back = export.read_csv(path)
    assert [r["flag"] for r in back] == [True, False] and all(type(r["flag"]) is bool for r in back)
    assert [r["other"] for r in back] == [False, True] and all(type(r["other"]) is bool for r in back)
    assert back[0]["code"] is None and back[1]["code"] is None  # was the truthy text 'None'
    assert back[0]["name"] == "x" and back[1]["n"] == 4
    # a column that also holds other text keeps the words as text: a name "True" beside a name "x"
    assert back[1]["name"] == "True"  # was the bool True, in a column of str
    # a text column keeps the spelling as it is (a class named "None", a site "True")
    kept = export.read_csv(path, text_columns=("code", "name"))
    assert kept[0]["code"] == "None" and kept[1]["name"] == "True"


def test_read_csv_reads_words_as_bools_and_none_only_in_a_column_of_nothing_else(tmp_path):
    rows = [{"label": "None", "mixed": None, "cls": "cat", "class": "3", "score": 0.5},
            {"label": "True", "mixed": 0.25, "cls": "False", "class": "4", "score": ""}]
    path = export.write_csv(tmp_path / "names.csv", rows)
    back = export.read_csv(path)
    assert [r["cls"] for r in back] == ["cat", "False"]  # was 'cat', then the bool False
    assert back[0]["mixed"] == "None" and back[1]["mixed"] == 0.25  # beside a number: the word stays as written
    assert [r["score"] for r in back] == [0.5, ""]  # an empty cell stays empty, numbers are numbers
    # the trade-off: a column of nothing but such words reads as bools and None (a "None" / "True" class too) ...
    assert back[0]["label"] is None and back[1]["label"] is True
    # ... unless named among the text columns, the default ones kept (the docstring's advice)
    kept = export.read_csv(path, text_columns=(*export.TEXT_COLUMNS, "label"))
    assert [(r["label"], r["class"]) for r in kept] == [("None", "3"), ("True", "4")]


def test_read_csv_keeps_the_name_columns_of_predictions_and_confusion_matrix_as_text(tmp_path):
    # the header neuroview.training.outputs writes, for a set whose classes are named "False" and "True"
    (tmp_path / "predictions.csv").write_text("split_index,target,pred,target_index,pred_index,prob_False,prob_True\n"
                                              "0,True,False,1,0,0.6,0.4\n1,False,False,0,0,0.7,0.3\n")
    back = export.read_csv(tmp_path / "predictions.csv")
    assert [(r["target"], r["pred"]) for r in back] == [("True", "False"), ("False", "False")]  # were bools
    assert back[0]["target_index"] == 1 and back[0]["prob_False"] == 0.6
    # and an earlier version's file, with the header its writer wrote (outputs.py before 451ba9f): the output
    # numbers under target/pred, the names beside them
    (tmp_path / "old.csv").write_text("split_index,target,pred,target_name,pred_name,prob_0,prob_1\n"
                                      "0,1,0,True,False,0.6,0.4\n1,0,0,False,False,0.7,0.3\n")
    back = export.read_csv(tmp_path / "old.csv")
    assert [(r["target_name"], r["pred_name"]) for r in back] == [("True", "False"), ("False", "False")]
    assert [(r["target"], r["pred"]) for r in back] == [(1, 0), (0, 0)]  # numbers (were the text '1', '0')
    assert all(type(r["target"]) is int and type(r["pred"]) is int for r in back)
    (tmp_path / "confusion_matrix.csv").write_text("true\\predicted,False,True\nFalse,3,1\nTrue,0,4\n")
    back = export.read_csv(tmp_path / "confusion_matrix.csv")
    assert [r["true\\predicted"] for r in back] == ["False", "True"] and back[1]["True"] == 4



def test_read_csv_reads_target_and_pred_as_numbers_where_they_hold_numbers(tmp_path):
    # predictions.csv of a data module that names no classes: the output numbers under target/pred, no *_index columns
    (tmp_path / "predictions.csv").write_text("split_index,target,pred,prob_0,prob_1\n0,1,1,0.4,0.6\n1,-1,0,0.9,0.1\n")
    back = export.read_csv(tmp_path / "predictions.csv")
    assert [(r["target"], r["pred"]) for r in back] == [(1, 1), (-1, 0)]  # were the text '1', '-1', '0'
    assert back[0]["pred"] + 1 == 2  # was a TypeError (str + int)
    # a user's own table with a numeric target column round-trips (read_csv's promise)
    rows = [{"sample": 0, "target": 3, "score": 0.5}, {"sample": 1, "target": 7, "score": 0.25}]
    assert export.read_csv(export.write_csv(tmp_path / "mine.csv", rows)) == rows
    # the named layout keeps its names as text: a label "2" stays "2" beside its output number 1
    (tmp_path / "named.csv").write_text("split_index,target,pred,target_index,pred_index,prob_0,prob_2\n"
                                        "0,2,0,1,0,0.6,0.4\n1,,2,-1,1,0.3,0.7\n")
    back = export.read_csv(tmp_path / "named.csv")
    assert [(r["target"], r["pred"]) for r in back] == [("2", "0"), ("", "2")]
    assert [(r["target_index"], r["pred_index"]) for r in back] == [(1, 0), (-1, 1)]
    # an explicit text_columns still keeps a numbers file's target as text where asked
    assert export.read_csv(tmp_path / "predictions.csv", text_columns=("target",))[0]["target"] == "1"
    with pytest.raises(TypeError, match=r"text_columns: expected a sequence of column names, got the string 'target'; "
                                        r"pass \['target'\] for one column"):
        export.read_csv(tmp_path / "predictions.csv", text_columns="target")  # its letters were the column names

def test_rnn_records_padding_round_trips_through_csv(tmp_path):
    torch.manual_seed(0)
    rnn = nv.wrap(nn.GRU(1, 4, batch_first=True), num_classes=2, max_len=6)
    x, lengths = torch.randn(3, 6, 1), torch.tensor([6, 4, 2])
    rnn.train()
    with torch.no_grad():
        rnn(x, lengths=lengths)
    rnn.eval()
    exp = rnn.explain(x, lengths=lengths, baseline="mean")
    rows = exp.to_records(target=exp.targets())
    back = export.read_csv(export.write_csv(tmp_path / "rnn.csv", rows))
    want = [r["step"] >= int(lengths[r["sample"]]) for r in back]  # a step past the series' end is padding
    assert any(want) and not all(want)  # both kinds of rows are there
    assert [r["padding"] for r in back] == want  # was 'True' / 'False', both truthy
    assert sum(not r["padding"] for r in back) == sum(not w for w in want) > 0


def test_sparsity_path_chosen_round_trips_through_csv(tmp_path):
    import warnings  # noqa: PLC0415

    torch.manual_seed(0)
    x = torch.randn(40, 1, 16)
    y = (x.mean((1, 2)) > 0).long()
    net = nv.NeuroViewCNN(nn.Sequential(nn.Conv1d(1, 4, 3), nn.ReLU()), 2)
    net.train()
    with torch.no_grad():
        net(x)
    net.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sp = nv.sparsify(net, [(x[i:i + 20], y[i:i + 20]) for i in range(0, 40, 20)])
    pts = sp.sparsity_path.to_records()
    back = export.read_csv(export.write_csv(tmp_path / "path.csv", pts))
    assert sum(r["chosen"] is True for r in pts) == 1  # one point of the path is the chosen one
    assert [r["chosen"] for r in back] == [r["chosen"] is True for r in pts]  # was every point: 'False' is truthy


# ------------------------------------------------------------------- 2. topk lists no unit that adds nothing
def _hand_cnn():
    """Units 0..5 of one 1x1 conv site: weights +1 except unit 2 (-1), no bias; class 0 reads units 0, 1, 2 with
    weights 2, -1.5, -0.7, and nothing else; class 1 reads unit 5 alone."""
    backbone = nn.Sequential(nn.Conv1d(1, 6, 1), nn.ReLU())
    with torch.no_grad():
        backbone[0].weight.copy_(torch.tensor([1.0, 1.0, -1.0, 1.0, 1.0, 1.0]).reshape(6, 1, 1))
        backbone[0].bias.zero_()
    net = nv.NeuroViewCNN(backbone, 2, normalize=False)
    x = torch.tensor([[[1.0, 1.0, 1.0, 1.0]], [[1.0, -1.0, 1.0, -1.0]]])
    net(x)
    net.eval()
    with torch.no_grad():
        net.classifier.weight.zero_()
        net.classifier.weight[0, :3] = torch.tensor([2.0, -1.5, -0.7])
        net.classifier.weight[1, 5] = 1.0
    return net, x


def test_topk_ranks_units_that_add_nothing_after_every_other_one():
    net, x = _hand_cnn()
    exp = net.explain(x)
    u = net.units
    # codes by hand: sample 0 all +1 inputs: units of weight +1 on (1), unit 2 off (0); sample 1 half and half: 0.5
    # class 0, sample 0: 2 * 1, -1.5 * 1, -0.7 * 0 = 0 (off), 0 for the unread units 3..5
    vals, units = exp.topk(3, target=0)
    assert vals.shape == (2, 3) and vals.dtype == torch.float32
    # was u[0], then two unread units (picked by torch's ties) before u[1]; then NaN / None padding: the zeros come
    # after every non-zero one, the lowest index first, with their value 0
    assert units[0] == [u[0], u[1], u[2]]
    assert vals[0].tolist() == pytest.approx([2.0, -1.5, 0.0])
    assert units[1] == [u[0], u[2], u[1]]  # 1 * 0.5 * 2, then -0.7 * 0.5 above -1.5 * 0.5: signed order
    assert vals[1].tolist() == pytest.approx([1.0, -0.35, -0.75])
    # class 1 reads unit 5 alone: that unit, then the first unit that adds nothing (unit 0, value 0)
    vals, units = exp.topk(2, target=1)
    assert units == [[u[5], u[0]], [u[5], u[0]]]
    assert vals.flatten().tolist() == pytest.approx([1.0, 0.0, 0.5, 0.0])
    # the ordinary loop and sums work: no None to unpack, no NaN in a sum
    assert [[f"{s}:{c}" for (s, c), _ in zip(units[b], vals[b].tolist())] for b in range(2)]
    assert vals.sum(-1).tolist() == pytest.approx([1.0, 0.5])


def test_topk_of_every_unit_sums_to_the_logit_less_the_bias():
    net, x = _hand_cnn()
    exp = net.explain(x)
    vals, units = exp.topk(10, target=0)  # 6 units: [B, min(k, U)]
    assert vals.shape == (2, 6) and all(len(r) == 6 for r in units)
    assert sorted(units[0]) == sorted(net.units)  # every unit once
    # class 0 by hand: 2 - 1.5 + 0 = 0.5 (sample 0); 1 - 0.35 - 0.75 = -0.1 (sample 1)
    assert vals.sum(-1).tolist() == pytest.approx([0.5, -0.1], abs=1e-6)


def _tied(weights):
    """One 1x1 conv site of 8 units, every code 1 (input 1, conv weight 1, no bias): class 0's contribution of unit u
    is ``weights[u]``."""
    backbone = nn.Sequential(nn.Conv1d(1, 8, 1), nn.ReLU())
    with torch.no_grad():
        backbone[0].weight.fill_(1.0)
        backbone[0].bias.zero_()
    net = nv.NeuroViewCNN(backbone, 2, normalize=False)
    x = torch.ones(1, 1, 4)
    net(x)
    net.eval()
    with torch.no_grad():
        net.classifier.weight.copy_(torch.tensor([weights, [0.0] * 8]))
    return net, x


def test_topk_breaks_ties_by_unit_index_and_k_is_a_prefix_of_k_plus_1():
    # units 5, 6 at 1.0; 1, 3, 4, 7 at 0.5 (tied); unit 2 at -0.5; unit 0 unread (0): zeros after the negative one
    net, x = _tied([0.0, 0.5, -0.5, 0.5, 0.5, 1.0, 1.0, 0.5])
    exp = net.explain(x)
    want = [5, 6, 1, 3, 4, 7, 2, 0]
    for k in range(1, 9):
        vals, units = exp.topk(k, target=0)
        assert units[0] == [net.units[i] for i in want[:k]], k  # was torch's order of ties, changing with k
        assert vals[0].tolist() == pytest.approx([1.0, 1.0, 0.5, 0.5, 0.5, 0.5, -0.5, 0.0][:k])


def test_topk_lists_a_nan_or_minus_inf_contribution_as_its_unit():
    from neuroview.core.explanation import CNNExplanation  # noqa: PLC0415

    units = [("conv", i) for i in range(6)]

    def exp_of(codes, weight):
        codes, weight = torch.tensor(codes), torch.tensor(weight)
        return CNNExplanation(logits=torch.zeros(1, 1), bias=torch.zeros(1), codes=codes, weight=weight,
                              units=units, site_slices={"conv": slice(0, 6)})

    # unit 1 adds -inf (an fp16 overflow): a real value, ranked last among the non-zero ones, before the zeros
    vals, top = exp_of([[1.0] * 6], [[1.0, float("-inf"), 0, 0, 0, 0]]).topk(3, target=0)
    assert top == [[units[0], units[1], units[2]]]  # was units[0], None, None
    assert vals[0, 0] == 1.0 and vals[0, 1] == float("-inf") and vals[0, 2] == 0
    # unit 1 adds NaN: listed (torch ranks NaN first), not marked as "no unit"
    vals, top = exp_of([[1.0, float("nan"), 1, 1, 1, 1]], [[1.0, 1.0, 0, 0, 0, 0]]).topk(3, target=0)
    assert top == [[units[1], units[0], units[2]]]  # was None, units[0], None
    assert math.isnan(vals[0, 0]) and vals[0, 1:].tolist() == [1.0, 0.0]


def test_topk_agrees_with_the_waterfall_and_top_units_on_a_sparse_head():
    from neuroview.attribution.waterfall_items import largest  # noqa: PLC0415

    net, x = _hand_cnn()
    exp = net.explain(x)
    top = net.top_units(6, standardized=False)  # the global ranking leaves unread units out
    assert [(s, ch) for s, ch, _ in top[0]] == [net.units[0], net.units[2], net.units[1]]
    vals, units = exp.topk(6, target=0)
    for b in range(2):
        listed = [u for u, v in zip(units[b], vals[b].tolist()) if v != 0]  # the units that add something
        # the waterfall's bars (largest |value|, exact zeros left out) are the same units
        assert set(listed) == {net.units[i] for i in largest(exp.for_class(0)[b], 6)}
    assert sorted(listed) == sorted(net.units[:3])  # sample 1: the units class 0 reads, every one of them, none else


def _full_sort_order(contrib: torch.Tensor, k: int) -> torch.Tensor:
    """The ranking 20c0cbd defined, by its two full stable sorts: signed value first (NaN first), ties by index,
    the units adding exactly 0 (-0.0 too) after every other one, by index."""
    order = contrib.sort(dim=-1, descending=True, stable=True).indices
    zero = (contrib == 0).gather(-1, order).byte()
    return order.gather(-1, zero.sort(dim=-1, stable=True).indices)[..., :k]


def _by_hand(row: list, k: int) -> list:
    """The same ranking in plain Python: (adds 0, not NaN, -value, index)."""
    return sorted(range(len(row)), key=lambda i: (row[i] == 0, not math.isnan(row[i]),
                                                  0.0 if math.isnan(row[i]) else -row[i], i))[:k]


def _random_exp(g: torch.Generator, b: int, u: int, dtype=torch.float32):
    from neuroview.core.explanation import CNNExplanation  # noqa: PLC0415

    codes = torch.randint(0, 3, (b, u), generator=g).float() / 2  # many exact zeros and ties
    w = torch.randint(-2, 3, (2, u), generator=g).float()
    w[w == 0] = -0.0 if torch.rand((), generator=g) < 0.5 else 0.0
    odd = torch.rand(2, u, generator=g)
    w[odd < 0.03], w[odd > 0.97] = float("nan"), float("-inf")  # a few NaN and -inf contributions
    return CNNExplanation(logits=torch.zeros(b, 2), bias=torch.zeros(2), codes=codes.to(dtype), weight=w.to(dtype),
                          units=[("s", i) for i in range(u)], site_slices={"s": slice(0, u)})


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64])
def test_topk_ranks_as_the_full_sort_on_random_ties_zeros_nan_and_inf(dtype):
    g = torch.Generator().manual_seed(0)
    for trial in range(150):
        u = int(torch.randint(1, 60, (), generator=g))
        exp = _random_exp(g, 4, u, dtype)
        c = exp.for_class(1)
        for k in sorted({1, 2, 5, 17, max(u - 1, 1), u, u + 3}):
            vals, top = exp.topk(k, target=1)
            want = _full_sort_order(c, k)
            assert top == [[exp.units[i] for i in r] for r in want.tolist()], (trial, k)
            assert [[exp.units[i] for i in _by_hand(c[b].float().tolist(), k)] for b in range(4)] == top, (trial, k)
            torch.testing.assert_close(vals, c.gather(-1, want), equal_nan=True)


def test_topk_sorts_no_row_of_every_unit():
    """20c0cbd sorted all U units of every row twice (stable): 25x torch.topk at B=256, U=8192. One torch.topk ranks
    them now (of a key unique per unit), ties and zeros included."""
    from torch.overrides import TorchFunctionMode  # noqa: PLC0415

    from neuroview.core.explanation import CNNExplanation  # noqa: PLC0415

    class Sorts(TorchFunctionMode):
        def __enter__(self):
            self.widths = []
            return super().__enter__()

        def __torch_function__(self, func, types, args=(), kwargs=None):
            if getattr(func, "__name__", "") in ("sort", "argsort"):
                self.widths.append(args[0].shape[-1])
            return func(*args, **(kwargs or {}))

    g = torch.Generator().manual_seed(0)
    b, u, k = 8, 4096, 10
    c = torch.randn(b, 2, u, generator=g)
    exp = CNNExplanation(logits=torch.zeros(b, 2), bias=torch.zeros(2), contributions=c,
                         units=[("s", i) for i in range(u)], site_slices={"s": slice(0, u)})
    with Sorts() as mode:
        vals, top = exp.topk(k, target=0)
    assert all(w <= k for w in mode.widths)  # was [4096, 4096]
    want = c[:, 0].topk(k, dim=-1)  # distinct values: torch.topk's own order
    assert top == [[("s", i) for i in r] for r in want.indices.tolist()]
    torch.testing.assert_close(vals, want.values)
    # a row of many ties at the k-th value sorts those ties (and a row of zeros all of them): still the same ranking
    c[0, 0] = torch.where(torch.arange(u) % 2 == 0, 1.0, 0.0)
    c[1, 0] = 0.0
    with Sorts() as mode:
        vals, top = exp.topk(k, target=0)
    assert all(w <= k for w in mode.widths)
    assert top[0] == [("s", i) for i in range(0, 2 * k, 2)] and top[1] == [("s", i) for i in range(k)]
    assert top[2:] == [[("s", i) for i in r] for r in want.indices[2:].tolist()]


# ------------------------------------------------------------------- 4. write_json takes what write_csv takes
def test_write_json_writes_numpy_and_0_dim_tensor_numbers_as_plain_numbers(tmp_path):
    obj = {"k90": torch.tensor(3.0), "share": np.float32(0.5), "n": np.int64(4), "flag": np.bool_(True),
           "gap": np.float32("nan"), "t_inf": torch.tensor(float("inf")), "nested": [np.float64(0.25), {"i": torch.tensor(2)}],
           np.int64(7): "numpy key"}
    path = export.write_json(tmp_path / "m.json", obj)
    back = json.loads(path.read_text(encoding="utf-8"))
    assert back == {"k90": 3.0, "share": 0.5, "n": 4, "flag": True, "gap": None, "t_inf": None,
                    "nested": [0.25, {"i": 2}], "7": "numpy key"}
    assert type(back["n"]) is int and type(back["flag"]) is bool


@pytest.mark.parametrize("value", [torch.zeros(2), np.zeros((2, 2))])
def test_write_json_refuses_an_array_with_dimensions_by_key(tmp_path, value):
    with pytest.raises(ValueError, match=r"^obj: expected numbers, strings, lists and dicts, got a .* of shape "
                                         r"\(2,( 2)?\) at \['a'\]\[1\]\['b'\]; .*tolist\(\)"):
        export.write_json(tmp_path / "m.json", {"a": [1, {"b": value}]})
    assert not (tmp_path / "m.json").exists()


# ------------------------------------------------------------------- write_json's keys (R4 finding 6)
@pytest.mark.parametrize("key, shown", [(float("nan"), "nan"), (float("inf"), "inf"),
                                        (np.float32("-inf"), r"(np\.float32\()?-inf"), ((1, 2), r"\(1, 2\)"),
                                        (torch.zeros(2), "tensor")])
def test_write_json_refuses_a_non_finite_or_non_scalar_key_by_where_it_sits(tmp_path, key, shown):
    # was: a NaN / inf key written as "null" (over a None key's entry), a tuple key a bare "unhashable type: 'list'"
    with pytest.raises(ValueError, match=rf"^obj: expected str, int, finite float, bool or None keys, got {shown}.* at "
                                         r"\['a'\]"):
        export.write_json(tmp_path / "m.json", {"a": {key: 1, "b": 2}})
    assert not (tmp_path / "m.json").exists()


@pytest.mark.parametrize("keys", [(float("nan"), None), (7, torch.tensor(7)), (7, "7"), (True, "true"), (1.5, "1.5")])
def test_write_json_refuses_two_keys_that_would_be_written_alike(tmp_path, keys):
    first, second = keys
    with pytest.raises(ValueError, match=r"^obj: expected .*keys|^obj: two keys"):  # not one entry lost in silence
        export.write_json(tmp_path / "m.json", {"a": {first: 1, second: 2}})
    assert not (tmp_path / "m.json").exists()


def test_write_json_keeps_plain_keys_as_json_writes_them(tmp_path):
    obj = {"a": {7: 1, np.int64(8): 2, torch.tensor(9): 3, 1.5: 4, None: 5, True: 6}}
    back = json.loads(export.write_json(tmp_path / "m.json", obj).read_text(encoding="utf-8"))
    assert back == {"a": {"7": 1, "8": 2, "9": 3, "1.5": 4, "null": 5, "true": 6}}
