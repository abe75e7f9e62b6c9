"""The one-line summary of a refusal the parser lists (``neuroview.cli._refusal``) keeps the reason (s22, P1 finding 5).

jsonargparse puts the reason of a ``Problem with given class_path '...':`` item (Lightning's "Requirement
'tensorboard' not met", any multi-line ``__init__`` refusal) on indented lines under the item: the summary kept the
item's first line only, and beside it the ``Expected a <class ...>`` items of the union's other branches, so
``--trainer.logger TensorBoardLogger`` without tensorboard said "...':; Expected a <class 'collections.abc.Iterable'>;
Expected a <class 'bool'>" and nothing of the missing package. The texts below are the parser's own, copied from
real runs (jsonargparse 4.53)."""

from __future__ import annotations

import importlib.util
import textwrap

import pytest

from neuroview.cli import _refusal, main

TB = ("Does not validate against any of the Union subtypes\nSubtypes: [<class 'pytorch_lightning.loggers.logger.Logger'>, "
      "collections.abc.Iterable[pytorch_lightning.loggers.logger.Logger], <class 'bool'>, <class 'NoneType'>]\nErrors:\n"
      "  - Problem with given class_path 'pytorch_lightning.loggers.TensorBoardLogger':\n"
      "      Neither `tensorboard` nor `tensorboardX` is available. Try `pip install`ing either.\n"
      "      Requirement 'tensorboardX' not met. HINT: Try running `pip install -U 'tensorboardX'`\n"
      "      Requirement 'tensorboard' not met. HINT: Try running `pip install -U 'tensorboard'`\n"
      "  - Expected a <class 'collections.abc.Iterable'>\n  - Expected a <class 'bool'>\n"
      "  - Expected a <class 'NoneType'>\nGiven value type: <class 'jsonargparse._namespace.Namespace'>\n"
      "Given value: Namespace(class_path='pytorch_lightning.loggers.TensorBoardLogger', init_args=Namespace("
      "save_dir='runs/tb', name='lightning_logs', version=None, log_graph=False, default_hp_metric=True, prefix='', "
      "sub_dir=None))")

SUBCLASS = ("  - Not a valid subclass of Callback\n    Subclass types expect one of:\n    - a class path (str)\n"
            "    - a dict with class_path entry\n"
            "    - a dict without class_path but with init_args entry (class path given previously)\n"
            "    - a dict with parameters accepted by the base class (implicit class_path)\n")


def _union(errors: str, given: str = "<class 'list'>") -> ValueError:
    return ValueError("Does not validate against any of the Union subtypes\nSubtypes: [list[...], <class 'NoneType'>]\n"
                      f"Errors:\n{errors}Given value type: {given}\nGiven value: [Namespace(class_path='x.Y')]")


def test_a_class_path_problem_says_every_reason_line_and_not_the_other_branches():
    said = _refusal(ValueError(TB))
    assert said == ("Problem with given class_path 'pytorch_lightning.loggers.TensorBoardLogger': Neither `tensorboard` "
                    "nor `tensorboardX` is available. Try `pip install`ing either.; Requirement 'tensorboardX' not met. "
                    "HINT: Try running `pip install -U 'tensorboardX'`; Requirement 'tensorboard' not met. HINT: Try "
                    "running `pip install -U 'tensorboard'`")


def test_a_multi_line_refusal_of_a_callback_keeps_its_second_line_and_drops_the_subclass_list():
    e = _union("  - level: expected 0, got 1\n    second line of the reason\n" + SUBCLASS
               + "  - Expected a <class 'NoneType'>\n")
    assert _refusal(e) == "level: expected 0, got 1; second line of the reason"


@pytest.mark.parametrize("errors, said", [
    # one-line reasons, said whole as before
    ("  - `mode` can be min, max, got sideways\n" + SUBCLASS + "  - Expected a <class 'NoneType'>\n",
     "`mode` can be min, max, got sideways"),
    ("  - batch_size: expected a positive int or 'auto', got 0\n  - Expected a <class 'NoneType'>\n",
     "batch_size: expected a positive int or 'auto', got 0"),
    # nothing but the subclass item: its first line, not the forms it lists
    (SUBCLASS + "  - Expected a <class 'NoneType'>\n", "Not a valid subclass of Callback"),
])
def test_one_line_reasons_are_said_as_before(errors, said):
    assert _refusal(_union(errors)) == said


def _fake_logger(tmp_path, monkeypatch) -> str:
    """A logger class that refuses as Lightning's TensorBoardLogger does without its package (two reason lines)."""
    (tmp_path / "s22_loggers.py").write_text(textwrap.dedent("""
        from pytorch_lightning.loggers import CSVLogger

        class NeedsPackage(CSVLogger):
            def __init__(self, save_dir: str = "logs"):
                raise ModuleNotFoundError("Neither `pkg_a` nor `pkg_b` is available.\\nRequirement 'pkg_a' not met.")
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "s22_loggers.NeedsPackage"


def _fit_refusal(request, capsys, *args: str) -> str:
    recipe = request.config.rootpath / "recipes" / "digits_nv_small_cnn.yaml"
    code = main(["fit", "--config", str(recipe), "--trainer.max_epochs", "1", *args])
    err = capsys.readouterr().err
    assert code == 2, err
    return err


def test_the_command_line_says_a_logger_s_missing_requirement(tmp_path, monkeypatch, capsys, request):
    monkeypatch.delenv("NEUROVIEW_TRACEBACK", raising=False)
    err = _fit_refusal(request, capsys, "--trainer.logger", _fake_logger(tmp_path, monkeypatch),
                       "--trainer.default_root_dir", str(tmp_path / "run"))
    line = next(x for x in err.splitlines() if x.startswith("neuroview fit: "))
    assert line == ("neuroview fit: Problem with given class_path 's22_loggers.NeedsPackage': Neither `pkg_a` nor "
                    "`pkg_b` is available.; Requirement 'pkg_a' not met."), err


@pytest.mark.skipif(any(importlib.util.find_spec(m) for m in ("tensorboard", "tensorboardX")),
                    reason="tensorboard is installed: TensorBoardLogger is built")
def test_the_command_line_says_tensorboard_is_missing(tmp_path, monkeypatch, capsys, request):
    monkeypatch.delenv("NEUROVIEW_TRACEBACK", raising=False)
    err = _fit_refusal(request, capsys, "--trainer.logger", "pytorch_lightning.loggers.TensorBoardLogger",
                       "--trainer.logger.save_dir", str(tmp_path / "tb"))
    assert "Neither `tensorboard` nor `tensorboardX` is available" in err and "Requirement 'tensorboard' not met" in err
    assert "Expected a <class" not in err, err
