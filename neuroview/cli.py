"""The ``neuroview`` command: one entry point, one sub-command per job.

``fit``/``validate``/``test``/``predict`` are LightningCLI (any config key can be overridden);
``demo`` is the embedded default job; ``zoo`` and ``explain`` serve the model zoo. The top
layer: may import every other, each inside the branch that needs it so `neuroview --help` is instant.
"""

from __future__ import annotations

import sys

USAGE = """usage: neuroview <command> [options]

commands:
  demo       wrap a small CNN, train it on scikit-learn's digits (offline, CPU, ~1 min),
             print its test accuracy and the top units of each class
  fit        train a recipe:  neuroview fit --config recipes/<recipe>.yaml [--trainer.max_epochs N ...]
  validate   evaluate a checkpoint on the validation split (LightningCLI)
  test       evaluate a checkpoint on the test split:  neuroview test --config ... --ckpt_path ...
  predict    predictions of a checkpoint (LightningCLI)
  explain    figures, tables and an offline index.html of what a model's decisions rest on:
             neuroview explain (--model NAME | --ckpt PATH) [--data NAME] --out DIR
  zoo        the trained zoo entries: dataset, parameter count, test accuracy (--verify checks hashes)
  sparsify   refit a NeuroView network's classifier to read few units per class (few steps for an RNN):
             neuroview sparsify nv_lite.gunpoint --out runs/sparse
  minirocket fit MiniRocket as a NeuroView-CNN (its features are unit codes, its ridge the head), in seconds:
             neuroview minirocket --data ArrowHead --max-k90 10 --out runs/minirocket
  retrofit   wrap a trained standard network, fit only the global classifier, report the accuracy cost:
             neuroview retrofit small_cnn.digits | neuroview retrofit W.safetensors --arch A --data D

Run `neuroview <command> --help` for a command's options.
"""

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd == "demo":
        from .training.demo import main as demo  # noqa: PLC0415 - keep `neuroview --help` instant

        return demo(rest)
    if cmd == "zoo":
        from .zoo.cli import main as zoo  # noqa: PLC0415

        return zoo(rest)
    if cmd == "retrofit":
        from .training.retrofit import main as retrofit  # noqa: PLC0415

        return retrofit(rest)
    if cmd == "sparsify":
        from .training.sparsify_cli import main as sparsify  # noqa: PLC0415

        return sparsify(rest)
    if cmd == "minirocket":
        from .training.minirocket_cli import main as minirocket  # noqa: PLC0415

        return minirocket(rest)
    if cmd == "explain":
        from .viz.report import main as explain  # noqa: PLC0415

        return explain(rest)
    if cmd in LIGHTNING_COMMANDS:
        from .training.cli import cli_main  # noqa: PLC0415

        cli_main([cmd, *rest])
        return 0
    print(f"neuroview: unknown command {cmd!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
