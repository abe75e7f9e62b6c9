"""Which point ``choose_point`` keeps when no point of the path meets the k90 budget."""

from __future__ import annotations

import torch

from neuroview.training.sparsity_path import choose_point


def test_a_budget_no_point_meets_keeps_the_most_accurate_of_the_smallest_k90():
    """Points 1 and 2 share the smallest k90 (3 > the budget of 1): the docstrings promise the more accurate,
    point 2 (85%); the tolerance rule ran on the tie and kept the sparser point 1 (80%)."""
    acc = torch.tensor([50.0, 80.0, 85.0, 90.0])
    loss = torch.tensor([[1.0], [0.6], [0.5], [0.4]])
    units, k90 = torch.tensor([0.0, 2.0, 4.0, 10.0]), torch.tensor([0.0, 3.0, 3.0, 5.0])
    kept = choose_point(acc, loss, units, reference=86.0, tolerance=10.0, deviance=0.0, k90=k90, max_k90=1.0)
    assert kept == 2
    # a tie in accuracy too goes to the lower validation loss
    acc2 = torch.tensor([50.0, 85.0, 85.0, 90.0])
    loss2 = torch.tensor([[1.0], [0.5], [0.6], [0.4]])
    assert choose_point(acc2, loss2, units, reference=86.0, tolerance=10.0, deviance=0.0, k90=k90, max_k90=1.0) == 1


def test_within_the_budget_the_sparsest_within_tolerance_is_still_kept():
    acc = torch.tensor([50.0, 80.0, 85.0, 90.0])
    loss = torch.tensor([[1.0], [0.6], [0.5], [0.4]])
    units, k90 = torch.tensor([0.0, 2.0, 4.0, 10.0]), torch.tensor([0.0, 3.0, 3.0, 5.0])
    assert choose_point(acc, loss, units, reference=86.0, tolerance=10.0, deviance=0.0, k90=k90, max_k90=3.0) == 1
