"""What ``sparsify_zoo.py --recentre`` reads of a sparse entry's record, how it words a spread ratio, and the names its
``--entries`` takes (apart from the script, which is at its size limit)."""

from __future__ import annotations


def finetune_kept(entry: dict) -> int:
    """The epochs of ``nv.finetune_sparse`` a sparse entry kept, wherever its export recorded them: ``training`` (this
    script's ``--export``) or ``sparsify`` (``neuroview sparsify --finetune``, ``sparsify_cli.sparsify_record``); 0: none."""
    return max((entry.get(k) or {}).get("finetune_epochs_kept") or 0 for k in ("training", "sparsify"))


def spread_off(old_var, new_var) -> float:
    """How far the stored spreads are off the codes', in standard deviations and either way: the largest of ``r`` and
    ``1 / r``, ``r = sqrt(new_var / old_var)`` over the units with both variances above 0 (1.0: none off)."""
    live = (old_var > 0) & (new_var > 0)
    r = (new_var[live].double() / old_var[live].double()).sqrt()
    return float(max(r.max(), 1 / r.min())) if len(r) else 1.0


def recentre_names(entries: list[str], known: list[str]) -> list[str]:
    """``--recentre --entries``: each a sparse entry's name or its dense entry's (``<name>_sparse``), once each, in the
    order given; ValueError (the repr of the name given) for one not in ``known``."""
    names = {n: n if n.endswith("_sparse") else f"{n}_sparse" for n in entries}
    for given, n in names.items():
        if n not in known:
            raise ValueError(repr(given))
    return list(dict.fromkeys(names.values()))
