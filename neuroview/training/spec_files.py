"""The files a data-module spec names (``path``, ``test_path``, ``val_path``; an image set's ``root``): absolute where
a command records a spec the user typed (:func:`absolute_spec`), and looked for where a command rebuilds the data a
checkpoint or zoo entry records (:func:`recorded_datamodule`).

May import every layer below training; ``neuroview.data`` (through the zoo's ``make_datamodule``) inside the functions.
"""

from __future__ import annotations

import os

from ..core.user_path import expand

__all__ = ["FILE_KEYS", "absolute_spec", "recorded_datamodule"]

#: The data modules' arguments that name a file or folder of the user's (NpzDataModule's and CsvDataModule's files,
#: MNISTDataModule's and CIFAR10DataModule's folder): each module makes them absolute itself, as it saves them.
FILE_KEYS = ("path", "test_path", "val_path", "root")


def absolute_spec(spec):
    """A JSON ``--data`` spec (parsed) as an entry records it: its ``init_args``' :data:`FILE_KEYS` absolute, ``~``
    expanded, as the data modules hold them (and a plain ``--data data/x.npz`` is recorded), its ``read_like`` too.
    Recorded as typed, a relative ``path`` was read from the folder of the later command (``explain --model``): no
    such file, or another project's file of that name. Anything that is no spec is given back as it is (refused by
    name where it is checked).

    >>> import os
    >>> absolute_spec({"class_path": "NpzDataModule", "init_args": {"path": "x.npz"}})["init_args"]["path"] == os.path.abspath("x.npz")
    True
    """
    if not isinstance(spec, dict):
        return spec
    init = spec.get("init_args")
    out = dict(spec)
    if isinstance(init, dict):  # the modules' own rule: os.path.abspath(os.path.expanduser(path))
        out["init_args"] = {k: os.path.abspath(expand(v)) if k in FILE_KEYS and isinstance(v, (str, os.PathLike)) and v
                            else v for k, v in init.items()}
    if "read_like" in spec:
        out["read_like"] = absolute_spec(spec["read_like"])
    return out


def recorded_datamodule(spec: dict, option: str, what: str):
    """The data module of the data ``what`` (``"the checkpoint 'runs/last.ckpt'"``, ``"the zoo entry 'nv_x.y'"``, named
    by ``option``) records, built where no ``--data`` was typed; a file of it that is no longer there (moved, as a
    project copied to another machine, or deleted) is refused naming where its path came from and ``--data``, which
    reads it in its new place: the data module's own ``path: ... (no such file)`` named an argument never typed."""
    from ..zoo.evaluate import make_datamodule  # noqa: PLC0415

    init = spec.get("init_args") if isinstance(spec, dict) else None
    for key in FILE_KEYS[:3]:  # files (an image set's missing root is said by its module, with its download option)
        value = init.get(key) if isinstance(init, dict) else None
        path = os.path.abspath(expand(value)) if isinstance(value, (str, os.PathLike)) and value else None
        if path is not None and not os.path.exists(path):  # a folder there: its module's own words
            how = (f"pass --data NEWPATH (where {os.path.basename(path)} is now) to read it there" if key == "path" else
                   f"pass --data a JSON data-module spec naming its files in their new place (path, {key})")
            raise FileNotFoundError(f"{option}: {what} records its training data {'file' if key == 'path' else key} as "
                                    f"{path!r}, which is not there (moved or deleted?); {how}")
    return make_datamodule(spec)
