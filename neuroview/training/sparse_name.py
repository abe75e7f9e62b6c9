"""Whether ``neuroview sparsify --data`` is the source zoo entry's own data, which its result's name then does not
repeat (moved out of :mod:`.sparsify_cli`, at its size): ``nv_lite.gunpoint --data GunPoint`` was written as
``nv_lite.gunpoint_gunpoint_sparse``, and the README's next command, ``explain --model nv_lite.gunpoint_sparse``,
found no such entry.

May import ``neuroview.data`` (inside the function: the command imports it when it runs).
"""

from __future__ import annotations

__all__ = ["own_data"]

#: The init_args that name the files or the folder a data module reads (a set by name aside)
_FILES = ("path", "test_path", "root")


def own_data(spec: dict, own: dict | None) -> bool:
    """Whether the data-module spec ``spec`` (``--data``'s, as the sparse entry records it) reads the data set a zoo
    entry records (``own``: its ``dataset``): the same class of ``neuroview.data``, and the same set by its name in any
    case (``GunPoint``, ``gunpoint``), the same files or folder (a copy of the same bytes too), or none of them (digits,
    mnist1d). An entry that records no data module is not known to be it: False, and the name says the data.

    >>> ucr = lambda name: {"class_path": "neuroview.data.UCRDataModule", "init_args": {"name": name}}
    >>> own_data(ucr("GunPoint"), {"name": "gunpoint", "data_module": ucr("gunpoint")}), own_data(ucr("ArrowHead"), {"data_module": ucr("GunPoint")})
    (True, False)
    """
    from ..data.read_as import same_file  # noqa: PLC0415

    mine = (own or {}).get("data_module")
    if not (isinstance(spec, dict) and isinstance(mine, dict)):
        return False
    if str(spec.get("class_path")).rsplit(".", 1)[-1] != str(mine.get("class_path")).rsplit(".", 1)[-1]:
        return False  # the short name or the full path of one class: JSON specs and checkpoints record either
    a, b = spec.get("init_args") or {}, mine.get("init_args") or {}
    files = [k for k in _FILES if a.get(k) is not None or b.get(k) is not None]
    if not all(a.get(k) is not None and b.get(k) is not None and same_file(a[k], b[k]) for k in files):
        return False
    return str(a.get("name", "")).lower() == str(b.get("name", "")).lower()
