"""`python -m mltoy.cli STAGE`: the one entry point through which DVC and Prefect run stages.

Orchestrators may call `run` in-process, from several threads at once: it never changes
the process's working directory and never exits; it raises MltoyInputError on bad input.
"""

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from mltoy.data import write_raw
from mltoy.errors import EXIT_BAD_INPUT, MltoyInputError
from mltoy.evaluate import stage_evaluate
from mltoy.params import load_params
from mltoy.prepare import stage_prepare
from mltoy.train import stage_train

log = logging.getLogger("mltoy")

Resolve = Callable[[str], Path]
Summary = dict[str, Any]
Handler = Callable[[argparse.Namespace, Resolve], Summary]


class _Parser(argparse.ArgumentParser):
    """Raises instead of exiting, so that a usage error in `run` cannot end the process."""

    def error(self, message: str) -> NoReturn:
        raise MltoyInputError(f"{message} (see '{self.prog} --help')")


def _raw_data(args: argparse.Namespace, at: Resolve) -> Summary:
    out = at(args.out)
    if out.exists() and not args.force:
        log.info("raw-data: %s exists, left unchanged (pass --force to overwrite)", out)
        return {"out": str(out), "written": False}
    write_raw(out)
    return {"out": str(out), "written": True}


# Each stage validates the whole params file before it touches any file, so that a bad
# section fails every stage, not only the one that reads it.


def _prepare(args: argparse.Namespace, at: Resolve) -> Summary:
    params = load_params(at(args.params))
    return stage_prepare(at(args.raw), at(args.train_out), at(args.test_out), params.split)


def _train(args: argparse.Namespace, at: Resolve) -> Summary:
    params = load_params(at(args.params))
    return stage_train(at(args.train), at(args.model_out), params.train)


def _evaluate(args: argparse.Namespace, at: Resolve) -> Summary:
    params = load_params(at(args.params))
    return stage_evaluate(
        at(args.model), at(args.test), at(args.metrics_out), at(args.plots_out), params.evaluate
    )


def _parser() -> _Parser:
    parser = _Parser(prog="python -m mltoy.cli", description="Run one stage of the iris pipeline.")
    stages = parser.add_subparsers(dest="command", required=True, metavar="STAGE")
    params_option = argparse.ArgumentParser(add_help=False)
    params_option.add_argument("--params", default="params.yaml", help="params file")

    def stage(name: str, handler: Handler, summary: str, *, params: bool = True) -> _Parser:
        command = stages.add_parser(
            name,
            help=summary,
            description=summary,
            parents=[params_option] if params else [],
            formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        )
        command.set_defaults(handler=handler)
        return command

    raw = stage("raw-data", _raw_data, "write the raw CSV from scikit-learn's copy", params=False)
    raw.add_argument("--out", default="data/raw/iris.csv", help="raw CSV to write")
    raw.add_argument("--force", action="store_true", help="overwrite an existing file")

    prepare = stage("prepare", _prepare, "split the raw data into train and test sets")
    prepare.add_argument("--raw", default="data/raw/iris.csv", help="raw CSV")
    prepare.add_argument(
        "--train-out", default="data/prepared/train.csv", help="train CSV to write"
    )
    prepare.add_argument("--test-out", default="data/prepared/test.csv", help="test CSV to write")

    train = stage("train", _train, "fit the model on the train set")
    train.add_argument("--train", default="data/prepared/train.csv", help="train CSV")
    train.add_argument("--model-out", default="models/model.joblib", help="model to write")

    evaluate = stage("evaluate", _evaluate, "score the model on the test set")
    evaluate.add_argument("--model", default="models/model.joblib", help="trained model")
    evaluate.add_argument("--test", default="data/prepared/test.csv", help="test CSV")
    evaluate.add_argument("--metrics-out", default="reports/metrics.json", help="metrics to write")
    evaluate.add_argument(
        "--plots-out", default="reports/plots/confusion.csv", help="confusion rows to write"
    )
    return parser


def run(argv: Sequence[str], *, cwd: str | Path | None = None) -> Summary:
    """Run one stage; relative paths are taken from `cwd` (default: the process's)."""
    args = _parser().parse_args(list(argv))

    def at(path: str) -> Path:
        return Path(path) if cwd is None else Path(cwd, path)

    summary: Summary = args.handler(args, at)
    log.info("%s: %s", args.command, ", ".join(f"{key}={value}" for key, value in summary.items()))
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    try:
        run(sys.argv[1:] if argv is None else argv)
    except MltoyInputError as error:
        print(f"mltoy: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
