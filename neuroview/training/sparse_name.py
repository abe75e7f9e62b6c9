"""Whether ``neuroview sparsify --data`` is the source zoo entry's own data, which its result's name then does not
repeat (moved out of :mod:`.sparsify_cli`, at its size): ``nv_lite.gunpoint --data GunPoint`` was written as
``nv_lite.gunpoint_gunpoint_sparse``, and the README's next command, ``explain --model nv_lite.gunpoint_sparse``,
found no such entry. Own data is the same data module and the same arguments, the class's defaults filled in: a JSON
spec of the entry's set carved otherwise (``test_fraction`` 0.3 put 163 of the source's training digits in its test
split) took the entry's own name. Also what other data is named by (:func:`data_suffix`), what a held name's entry was
made from (:func:`other_data`), and ``--data``'s names (:func:`check_data_name`).

May import ``neuroview.data`` (inside the functions: the command imports it when it runs).
"""

from __future__ import annotations

__all__ = ["check_data_name", "data_suffix", "other_data", "own_data", "same_data"]

#: The init_args that name the files or the folder a data module reads (a set by name aside)
_FILES = ("path", "test_path", "val_path", "root")
#: The init_args that say how the series are loaded, not which series nor how they are read: the same data (the zoo's
#: nv_fcn1d.gunpoint records batch_size 8, and `--data GunPoint` reads its very splits by another batch size)
_LOADING = ("batch_size", "eval_batch_size", "num_workers", "download", "cache")


def _effective(spec) -> tuple[str, dict] | None:
    """``(class name, init_args)`` of a data-module spec, the class's defaults filled in (``UCRDataModule`` with no
    ``name`` reads GunPoint) and its loading options left out; None where it names no data module of neuroview.data."""
    import inspect  # noqa: PLC0415

    from .. import data as D  # noqa: PLC0415

    path = spec.get("class_path") if isinstance(spec, dict) else None
    cls = getattr(D, path.rsplit(".", 1)[-1], None) if isinstance(path, str) else None
    given = spec.get("init_args") or {} if isinstance(spec, dict) else None
    if not (inspect.isclass(cls) and issubclass(cls, D.ArrayDataModule) and isinstance(given, dict)):
        return None
    args = {p.name: p.default for p in inspect.signature(cls).parameters.values() if p.default is not p.empty} | given
    return cls.__name__, {k: v for k, v in args.items() if k not in _LOADING}


def _base(spec):
    """The spec of the data ``spec`` is read like (its innermost ``read_like``), else ``spec`` itself."""
    while isinstance(spec, dict) and isinstance(spec.get("read_like"), dict):
        spec = spec["read_like"]
    return spec


def _differences(here, there) -> list[tuple[str, object, object]] | None:
    """``(what, here's, there's)`` where two specs read other data (the class, or an argument); None where either
    names no data module that can be compared (not known to be the same)."""
    from ..data.read_as import same_file  # noqa: PLC0415

    a, b = _effective(here), _effective(there)
    if a is None or b is None:
        return None
    if a[0] != b[0]:  # the short name or the full path of one class: JSON specs and checkpoints record either
        return [("class", a[0], b[0])]
    out = []
    for k in sorted(set(a[1]) | set(b[1])):
        x, y = a[1].get(k), b[1].get(k)
        if k in _FILES:  # a copy of the same bytes is the same file
            same = x is None and y is None or x is not None and y is not None and same_file(x, y)
        else:  # a set's name in any case: a hand-written or older manifest's "gunpoint"
            same = x.lower() == y.lower() if k == "name" and isinstance(x, str) and isinstance(y, str) else x == y
        if not same:
            out.append((k, x, y))
    return out


def same_data(here, there) -> bool:
    """Whether data-module specs ``here`` and ``there`` read the same series the same way: the same class of
    ``neuroview.data``, the same arguments with the class's defaults filled in (the same set, files, seed, fractions,
    normalize, resample, ...; loading options aside), and read like the same data (``read_like``)."""
    if _differences(here, there) != []:
        return False
    a, b = _base(here), _base(there)
    return (a is here and b is there) or _differences(a, b) == []


def own_data(spec: dict, own: dict | None) -> bool:
    """Whether the data-module spec ``spec`` (``--data``'s, as the sparse entry records it) reads the data a zoo entry
    records (``own``: its ``dataset``), as :func:`same_data` tells. An entry that records no data module is not known
    to be it: False, and the name says the data.

    >>> ucr = lambda name, **kw: {"class_path": "neuroview.data.UCRDataModule", "init_args": {"name": name, **kw}}
    >>> own_data(ucr("GunPoint"), {"data_module": {"class_path": "UCRDataModule"}}), own_data(ucr("GunPoint", seed=1), {"data_module": ucr("GunPoint")})
    (True, False)
    """
    return same_data(spec, (own or {}).get("data_module"))


def data_suffix(spec: dict, data: str) -> str:
    """What a sparse entry made on other data than its source's is named by: the set's name, the file's stem or the
    data module's (``italypowerdemand``, ``mine``, ``digits``); for a JSON ``--data``, which says itself how it splits
    and reads the data, also a short hash of the spec it reads (defaults filled in): the JSON text was the name."""
    import hashlib  # noqa: PLC0415
    import json  # noqa: PLC0415
    import re  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    eff = _effective(spec)
    args = eff[1] if eff else (spec.get("init_args") or {})
    label = (args.get("name") or (Path(str(args["path"])).stem if args.get("path") else None) or
             (eff[0].removesuffix("DataModule") if eff else None) or data)
    label = re.sub(r"[^a-z0-9]+", "_", str(label).lower()).strip("_")
    if not data.lstrip().startswith("{"):  # a name or a path, read as the source's data was: named by it
        return label
    said = [eff or spec] + ([_effective(_base(spec)) or _base(spec)] if _base(spec) is not spec else [])
    text = json.dumps(said, sort_keys=True, default=str, separators=(",", ":"))
    return f"{label}_{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def _describe(spec) -> str:
    eff = _effective(spec)
    if eff is None:
        return repr(spec.get("class_path") if isinstance(spec, dict) else spec)
    ids = ", ".join(f"{k}={eff[1][k]!r}" for k in ("name", *_FILES) if eff[1].get(k) is not None)
    return f"{eff[0]} {ids}" if ids else eff[0]


def other_data(out, name: str, spec: dict) -> str | None:
    """Where the zoo folder ``out`` holds an entry ``name`` made from other data than ``spec`` (this run's), what it
    records and how it differs; None where it holds none, one of the same data, or one that records no data module
    to compare (an entry saved by the Python API: the refusal's advice as before)."""
    from ..zoo.pretrained import read_manifest  # noqa: PLC0415

    try:
        held = read_manifest(out).get(name)
    except (ValueError, OSError):
        return None  # said by the check of --out itself
    if not isinstance(held, dict):
        return None
    there = held["dataset"].get("data_module") if isinstance(held.get("dataset"), dict) else None
    diff = _differences(spec, there)
    if diff is None or same_data(spec, there):
        return None
    if diff and diff[0][0] == "class" or any(k in ("name", *_FILES) for k, _, _ in diff):
        return f"it was made from other data ({_describe(there)} there, {_describe(spec)} here)"
    if diff:
        return f"it was made from other data ({'; '.join(f'{k} {y!r} there, {x!r} here' for k, x, y in diff)})"
    return f"it was made from other data (read like {_describe(_base(there))} there, {_describe(_base(spec))} here)"


def check_data_name(data: str) -> None:
    """``--data`` that is no path nor JSON spec names a set: ``digits`` or ``mnist1d`` in any case, a UCR/UEA set as
    aeon spells it (``GunPoint``); any other, a ValueError naming ``--data`` and the set meant (``gunpoint`` was refused
    as ``data:`` with no word of GunPoint)."""
    import difflib  # noqa: PLC0415

    from ..data import UCR_DATASETS  # noqa: PLC0415
    from .data_arg import _DATA, path_kind  # noqa: PLC0415

    if not isinstance(data, str) or data.lstrip().startswith("{") or path_kind(data) is not None or data.lower() in _DATA:
        return  # (no --data: the source's own; a path or a spec: read and refused as such)
    if data in UCR_DATASETS:
        return
    names = {n.lower(): n for n in (*_DATA, *UCR_DATASETS)}
    key = data.lower() if data.lower() in names else next(iter(difflib.get_close_matches(data.lower(), names, n=1)), None)
    raise ValueError(f"--data: expected 'digits' or 'mnist1d' (in any case), a set aeon ships as it spells it "
                     f"{UCR_DATASETS}, an .npz, .csv or .tsv path or a JSON {{'class_path': 'neuroview.data.X', "
                     f"'init_args': {{...}}}}, got {data!r}" + (f"; did you mean {names[key]!r}?" if key else ""))
