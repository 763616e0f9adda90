"""Train, package and evaluate Restyle's model zoo from model-zoo/recipes.toml.

    python model-zoo/build.py train --profile standard [--only ID ...] [--jobs N]
    python model-zoo/build.py package --profile standard [--profile lite]
    python model-zoo/build.py signals
    python model-zoo/build.py evaluate --gate
    python model-zoo/build.py train-arbitrary --profile gpu
    python model-zoo/build.py package --arbitrary gpu
    python model-zoo/build.py evaluate-arbitrary

Run from the repository root with ../shared/data beside it. `train` writes runs under
zoo-runs/PROFILE/ID/; `package` copies them into the package (fp16 weights, a ≥512 px
thumbnail of the painting, registry.json); `evaluate` writes docs/model-zoo.md and its images.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from arbitrary_evaluate import add_evaluate_arbitrary_parser
from zoo_evaluate import add_evaluate_parser
from zoo_package import add_package_parser, add_signals_parser
from zoo_train import add_train_parser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    add_train_parser(commands)
    add_package_parser(commands)
    add_signals_parser(commands)
    add_evaluate_parser(commands)
    add_evaluate_arbitrary_parser(commands)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
