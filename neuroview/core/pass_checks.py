"""What a NeuroView-CNN's pass checks around the backbone's run, said by name rather than left to torch or to NaN.

- Before it: ``torch.jit.trace`` (the codes are read by hooks and an autograd Function, which a trace cannot save:
  its check failed with a page of graph diff), and ``torch.export`` of a network whose sites are not found yet
  (finding them runs hooks, context managers and data-dependent checks that export cannot trace).
- After it: every site ran (:func:`require_all_sites`), and the codes are finite where the input was
  (:func:`require_finite_codes`: a float16 overflow under autocast gave NaN logits, read as class 0).

Imports only torch and the core modules below it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .edits import require_same_modules  # (named here too: the recorder's check of a pass)
from .hooks import PathChanged

__all__ = ["refuse_tracing", "traced_apart", "require_same_modules", "require_all_sites", "require_finite_codes"]


def refuse_tracing(net) -> None:
    """A clear error where ``net``'s pass is being traced by a tool that cannot take it (as the RNN says its own)."""
    if torch.jit.is_tracing():
        # (the network traced may hold this one: an Ensemble's members run here, so both are named)
        raise TypeError(f"torch.jit.trace: a {type(net).__name__} reads its codes through hooks and an autograd "
                        "Function (so does any network holding one: an Ensemble of them), which TorchScript cannot record "
                        "or save; use torch.export.export(net, (x,)) (after one forward pass) or torch.compile(net)")
    if net.sites is None and torch.compiler.is_exporting():
        raise RuntimeError(f"torch.export: the {type(net).__name__}'s sites are not found yet, and finding them (hooks, "
                           "data-dependent checks) cannot be exported; they are found on the first batch: call net(x) "
                           "once on a real batch before exporting, or build with example_input=x")


def traced_apart(ensemble) -> bool:
    """Whether an ensemble's members must run apart, each through its own pass, so that :func:`refuse_tracing` names
    what the tool cannot take: under ``torch.jit.trace`` (the batched pass's ``torch.func`` call failed with "The
    stateless API can't be used with Jitted modules"; standard members trace apart), and under ``torch.export`` while
    a NeuroView member's sites are not found yet (found in the batched pass, a data-dependent guard's page of graph)."""
    if torch.jit.is_tracing():
        return True
    return torch.compiler.is_exporting() and any(getattr(m, "sites", ()) is None for m in ensemble.members)


def require_all_sites(net, codes: list) -> None:
    """A clear error where the pass read fewer sites than were found: those that did not run are named, with the fix."""
    if len(codes) == len(net.sites):
        return
    require_same_modules(net)  # a replaced module, not the data: said as such
    ran, left = net.sites[:len(codes)], net.sites[len(codes):]
    # a module called at several places whose later calls are missing: any of its calls may be the one skipped (the
    # recorder read the calls that ran as its first ones), so the module is named with its count, not a site
    shared = list(dict.fromkeys(s.module for s in left if any(r.module == s.module for r in ran)))
    plain = [s.name for s in left if s.module not in shared]
    said = [f"{plain} did not run on this batch"] if plain else []
    for m in shared:
        calls = [s.name for s in net.sites if s.module == m]
        said.append(f"the module {m!r} ran {sum(r.module == m for r in ran)} of its {len(calls)} calls (sites {calls}), "
                    "which of them did not run cannot be told")
    raise PathChanged(
        f"backbone: its forward pass called {len(codes)} sites, expected {len(net.sites)}: {'; '.join(said)} (an "
        "input-dependent branch, or a layer skipped), so the decision has no codes for their units; leave them out "
        "with layers=[...] naming the sites every pass runs" + ("; give each place its own module to name the one "
                                                              "skipped" if shared else ""))


def _may_overflow(x: Tensor, codes: Tensor) -> bool:
    """Whether the codes are checked: always on the CPU (a reduction over [B, units], no sync); on a device only in
    float16 (autocast or a half network), whose range (65504) a finite input can overflow, so that float32 and bfloat16
    training on a GPU keeps one host sync a step (the input's check), as benchmarks/gpu_cost.py measured it."""
    dev = x.device.type
    return dev == "cpu" or codes.dtype == torch.float16 or (torch.amp.is_autocast_available(dev) and (
        torch.is_autocast_enabled(dev) and torch.get_autocast_dtype(dev) == torch.float16))


def require_finite_codes(net, x: Tensor, codes: Tensor) -> None:
    """A clear error where a finite input gave NaN or Inf codes (a float16 overflow under autocast: the logits, the
    prediction and the readability of those samples were NaN, class 0 and "the most readable"). Checked where the
    network checks its input (``net.check_finite``) and is not training (``net.training`` False: explain, validation,
    test, predict), on a device only in float16 (:func:`_may_overflow`); a host sync, an assert traced into the graph
    under compile. A training step is not checked: under float16 mixed precision a transient overflow gives a
    non-finite loss, whose step the gradient scaler skips (lowering its scale), as it does without a NeuroView head."""
    if net.training or not net.check_finite or not _may_overflow(x, codes):
        return
    if torch.compiler.is_compiling():
        torch._assert_async(torch.isfinite(codes).all(), "x: a finite input gave NaN or Inf codes")
        return
    bad = ~torch.isfinite(codes.detach())
    if not bool(bad.any()):
        return
    rows = bad.any(1).nonzero().flatten().tolist()
    ends, k = 0, 0
    for k, s in enumerate(net.sites):  # the first site with a non-finite code
        ends += s.channels
        if bool(bad[:, :ends].any()):
            break
    dev = x.device.type
    peak = f"x holds values up to {x.detach().abs().max().item():.3g}" if x.is_floating_point() else f"x is {x.dtype}"
    dt = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else None
    if dt == torch.float16:  # 65504: a finite input overflows it; bfloat16 has float32's range, so no such advice there
        why = (f"{peak}, and the pass runs under float16 autocast, whose largest value is {torch.finfo(dt).max:.6g}: an "
               "overflow? Run these samples without autocast (or in bfloat16), or scale x")
    elif dt is not None:
        why = (f"{peak}, under {str(dt).replace('torch.', '')} autocast: a NaN or Inf weight, or an activation that "
               "makes one? Check the backbone's weights")
    else:
        why = f"{peak}: a weight or an activation that overflows {codes.dtype}? Check the backbone's weights and x's scale"
    more = f" (of {len(rows)})" if len(rows) > 10 else ""
    raise ValueError(f"x: samples {rows[:10]}{more} give NaN or Inf codes at site {net.sites[k].name!r} though x is "
                     f"finite ({why}); their logits would be NaN. net.check_finite = False lets them through")
