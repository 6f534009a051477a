"""The ``gradwise`` command: train, evaluate and use models from the terminal.

This is the only module that reads the command line and the environment, prints for people and
chooses exit codes, one per kind of failure (:data:`EXIT_CODES`, also in ``gradwise --help``):

====  =========================================================================================
0     success
1     an unexpected error: a bug in gradwise (rerun with GRADWISE_DEBUG=1 for the traceback)
2     usage: a bad option (or one before its command), value, config file, output path (a
      file where a folder must go), run state or picture; nothing was changed
3     data: the data set or the --data-dir named is not found, is empty, cannot be
      downloaded, or its files are damaged
4     run folder: the run folder named is missing or not a run, or a checkpoint or weights
      file is missing, damaged or does not fit, or the run's model cannot be exported
5     training diverged (a non-finite loss) or --detect-anomaly found a NaN/Inf
6     the system refused: a folder cannot be created or written, the disk is full
7     an optional package the feature needs is not installed (the message names the pip extra)
130   interrupted by SIGINT (Ctrl-C); a checkpoint was saved (143 for SIGTERM)
====  =========================================================================================

The work itself is done by :mod:`gradwise.runs` and :mod:`gradwise.recipes`.
"""

from __future__ import annotations

import argparse
import difflib
import math
import os
import re
import shutil
import signal
import sys
import textwrap
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from gradwise import __version__
from gradwise._malloc import reuse_freed_memory
from gradwise._shown import escape_controls, plural, short_repr, shown
from gradwise.doctor.lr_find import SUGGESTION_METHODS
from gradwise.recipes import (
    DEFAULT_RECIPE,
    OPTIMIZERS,
    RECIPES,
    SCHEDULES,
    ConfigError,
    TrainConfig,
    did_you_mean,
    get_recipe,
    read_config_file,
)

if TYPE_CHECKING:
    from gradwise.runs import StopRequest

DEBUG_ENV = "GRADWISE_DEBUG"
EXIT_BUG = 1
EXIT_USAGE = 2
EXIT_DATA = 3
EXIT_RUN = 4
EXIT_DIVERGED = 5
EXIT_SYSTEM = 6
EXIT_MISSING_EXTRA = 7
EXIT_FAILURE = EXIT_BUG  # the old name of code 1
SIGNAL_EXIT = {"SIGINT": 130, "SIGTERM": 143}
EXIT_CODES = {
    0: "success",
    EXIT_BUG: f"an unexpected error, a bug in gradwise ({DEBUG_ENV}=1 shows the traceback)",
    EXIT_USAGE: "a bad option, value, config file, output path, run state or picture; "
                "nothing changed",
    EXIT_DATA: "the data set or the --data-dir is not found, is empty, cannot be downloaded, "
               "or is damaged",
    EXIT_RUN: "the run folder is missing or not a run, or a checkpoint or weights file is "
              "missing, damaged or does not fit, or the model cannot be exported",
    EXIT_DIVERGED: "training diverged, or --detect-anomaly found a NaN/Inf",
    EXIT_SYSTEM: "the system refused: cannot create or write a file (permissions, a "
                 "read-only or full disk)",
    EXIT_MISSING_EXTRA: "an optional package the feature needs is not installed (pip extra "
                        "named)",
    SIGNAL_EXIT["SIGINT"]: "interrupted by Ctrl-C (143: by SIGTERM); a checkpoint was saved",
}
"""Exit code -> what it means; printed by ``gradwise --help``."""

HELP_WIDTH = 80
"""Every line of ``--help`` fits this many columns (a standard terminal), whatever the
terminal's width: the hand-laid-out parts are written to fit, the rest is wrapped to it."""

DESCRIPTION = """\
gradwise trains neural networks on NumPy and shows why training works or fails.

Start with `gradwise train`: it trains a handwritten-digit classifier (the
mnist-mlp recipe), prints its progress and test accuracy, and keeps everything
in a run folder under runs/. Without MNIST files and offline, it uses
scikit-learn's small digits set. Options go after the command, as in
`gradwise train spiral --quiet`."""

EXAMPLES = """\
examples:
  gradwise train                          train the default digit classifier
  gradwise train fashion-cnn --epochs 5   a CNN on Fashion-MNIST, 5 epochs
  gradwise train spiral --lr 0.003        a toy problem, another learning rate
  gradwise train --config my.toml         settings from a file (flags still win)
  gradwise train --resume runs/RUN        continue an interrupted run
  gradwise train --resume runs/RUN --epochs 30
                                          train a finished run for more epochs
  gradwise evaluate runs/RUN              test accuracy and confusions of a run
  gradwise export runs/RUN                write the model to runs/RUN/model.onnx
  gradwise predict runs/RUN digit.png     classify your own picture of a digit
  gradwise recipes                        list what `train` can train

Ctrl-C during training saves a checkpoint and tells you how to resume.
Set GRADWISE_DATA=DIR to tell gradwise where your data sets are.
Set GRADWISE_DEBUG=1 to see full tracebacks.

exit codes:
""" + "\n".join(
    textwrap.fill(meaning, HELP_WIDTH, initial_indent=f"  {code:<4} ", subsequent_indent=" " * 7,
                  break_on_hyphens=False)
    for code, meaning in EXIT_CODES.items())

TRAIN_EXAMPLES = """\
Settings come from the recipe, then the --config file, then the flags you give.
A config file (JSON or TOML) holds keys named like the flags:
  epochs = 5
  lr = 0.002
  hidden = [256, 128]

examples:
  gradwise train
  gradwise train mnist-cnn --epochs 3 --batch-size 64
  gradwise train fashion-mlp --optimizer sgd --lr 0.05 --schedule onecycle
  gradwise train spiral --out runs/my-spiral --quiet
  gradwise train --resume runs/mnist-mlp-20240101-120000
  gradwise train --resume runs/mnist-mlp-20240101-120000 --epochs 30"""


class CommandError(Exception):
    """A failure the command's own checks found before any work: one line, exit code ``code``.

    The subclasses are the kinds of :data:`EXIT_CODES` that the command line can see for
    itself; everything else is classified by :func:`_classify`.
    """

    code = EXIT_USAGE


class UsageError(CommandError):
    """Bad command-line input (an option, a value, where an option belongs, an output path
    that cannot be created because a file stands in its way): exit code 2."""

    code = EXIT_USAGE


class RunFolderError(CommandError):
    """The run folder a command names is missing, not a folder or not a gradwise run: exit
    code 4, as for a damaged run."""

    code = EXIT_RUN


class DataFolderError(CommandError):
    """The ``--data-dir`` named does not exist or is not a folder: exit code 3, as for any data
    set that is not found."""

    code = EXIT_DATA


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, wrapping to the terminal but never wider than :data:`HELP_WIDTH`
    (argparse alone fills a 200-column terminal with 200-column lines)."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        columns = shutil.get_terminal_size((HELP_WIDTH, 24)).columns
        super().__init__(prog, indent_increment, max_help_position,
                         width if width is not None else min(columns, HELP_WIDTH) - 2)


class _RawHelpFormatter(_HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """:class:`_HelpFormatter` keeping the description and epilog as laid out (each line
    already within :data:`HELP_WIDTH`)."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing the usage block and exiting, and suggests the
    closest option or choice for a typo."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        hint = self._suggestion(message)
        # a 5000-digit --epochs would be quoted whole: cut any quoted value to 60 characters
        message = re.sub(r"'([^']{60})[^']{4,}'", r"'\1...'", message)
        raise UsageError(f"{message}{hint} (see '{self.prog} --help')")

    def _suggestion(self, message: str) -> str:
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)$", message)
        if choice:
            return did_you_mean(choice.group(1), re.findall(r"'([^']*)'", choice.group(2)))
        unknown = re.match(r"unrecognized arguments: (\S+)", message)
        if unknown and unknown.group(1).startswith("-"):
            flag = unknown.group(1).split("=", 1)[0]
            if flag in (o for action in self._actions for o in action.option_strings):
                return ""  # known here, misplaced: the caller says where it belongs
            root = getattr(self, "root", self)
            options = [o for action in root._all_actions() for o in action.option_strings]
            if flag in options:  # another command's option: never "did you mean" itself
                owners = [name for name, sub in _subcommands(root).items()
                          if any(flag in a.option_strings for a in sub._actions)]
                return f" ({flag} is an option of {', '.join(owners)} only)"
            # compared without the dashes every option shares: with them '--bogus' came out
            # close to '--out' (difflib's ratio counts the common '--')
            names = {o.lstrip("-"): o for o in options}
            close = difflib.get_close_matches(flag.lstrip("-"), list(names), n=1)
            return f" (did you mean {names[close[0]]!r}?)" if close else ""
        return ""

    def _all_actions(self) -> list[argparse.Action]:
        """This parser's options and those of every subcommand (argparse reports unknown
        options on the top-level parser)."""
        actions = list(self._actions)
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                for parser in action.choices.values():
                    actions += parser._actions
        return actions


# ---- the parser -------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The ``gradwise`` argument parser with one subcommand per task."""
    parser = _Parser(
        prog="gradwise",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=_RawHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"gradwise {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    train = commands.add_parser(
        "train",
        help="train a model from a recipe (default: mnist-mlp)",
        description="Train a model from a recipe and save it in a run folder.",
        epilog=TRAIN_EXAMPLES,
        formatter_class=_RawHelpFormatter,
    )
    train.add_argument("recipe", nargs="?", metavar="RECIPE",
                       help=f"what to train; one of {', '.join(RECIPES)} "
                            f"(default {DEFAULT_RECIPE}; see 'gradwise recipes')")
    hyper = train.add_argument_group("training settings (override the recipe)")
    hyper.add_argument("--epochs", type=int, help="passes over the training data")
    hyper.add_argument("--batch-size", type=int, help="samples per optimizer step")
    hyper.add_argument("--lr", type=float, help="learning rate (the peak for onecycle)")
    hyper.add_argument("--optimizer", choices=OPTIMIZERS,
                       help="the update rule: " + ", ".join(OPTIMIZERS)
                            + " (sgd uses Nesterov momentum 0.9)")
    hyper.add_argument("--schedule", choices=SCHEDULES,
                       help="how the learning rate changes over training")
    hyper.add_argument("--dropout", type=float, help="dropout probability, 0 to switch off")
    hyper.add_argument("--weight-decay", type=float, metavar="DECAY",
                       help="L2 penalty (decoupled for adamw), 0 to switch off")
    hyper.add_argument("--label-smoothing", type=float, metavar="EPS",
                       help="train towards 1 - EPS on the true class and EPS spread over all "
                            "classes (0 switches it off); the test loss is always plain "
                            "cross-entropy")
    hyper.add_argument("--clip-grad-norm", type=float, metavar="MAX_NORM",
                       help="clip the gradients' total norm to MAX_NORM")
    hyper.add_argument("--seed", type=int, help="seed for data order, weights and dropout")
    hyper.add_argument("--limit-train", type=int, metavar="N",
                       help="train on N samples only (quick runs)")
    hyper.add_argument("--config", metavar="FILE", help="settings file (JSON or TOML)")
    run = train.add_argument_group("data, output and diagnostics")
    run.add_argument("--data-dir", metavar="DIR",
                     help="folder holding the data set's IDX files (else $GRADWISE_DATA, "
                          "the cache, system folders, then a download)")
    run.add_argument("--out", metavar="DIR",
                     help="run folder to create (default runs/RECIPE-DATE-TIME)")
    run.add_argument("--resume", metavar="RUN_DIR",
                     help="continue an interrupted run from its last checkpoint; with "
                          "--epochs N, train a finished run on to N epochs in all")
    run.add_argument("--quiet", action="store_true",
                     help="no progress bars or per-epoch lines")
    run.add_argument("--no-doctor", dest="doctor", action="store_const", const=False,
                     help="do not watch training for problems")
    run.add_argument("--detect-anomaly", action="store_const", const=True,
                     help="trace NaN/Inf to the operation that produced it (slow)")
    run.add_argument("--distributed", action="store_true",
                     help="data-parallel over the ranks of an MPI job: mpiexec -n 4 gradwise "
                          "train --distributed (--batch-size is per rank; docs/DISTRIBUTED.md)")
    run.add_argument("--tensorboard", metavar="DIR",
                     help="also write TensorBoard event files to DIR (pip install "
                          "'gradwise[tensorboard]'; view with: tensorboard --logdir DIR)")
    _add_ignore_digest(run)
    train.set_defaults(handler=cmd_train)

    evaluate = commands.add_parser(
        "evaluate", help="test accuracy and confusions of a trained run",
        description="Rebuild a run's model from its folder and score it on the test data.",
    )
    evaluate.add_argument("run_dir", metavar="RUN_DIR", help="the run folder `train` wrote")
    evaluate.add_argument("--data-dir", metavar="DIR", help="where the data set is now")
    _add_weights_choice(evaluate)
    evaluate.add_argument("--allow-non-finite", action="store_true",
                          help="evaluate NaN/inf weights instead of refusing them (to inspect "
                               "a diverged run)")
    evaluate.set_defaults(handler=cmd_evaluate)

    predict = commands.add_parser(
        "predict", help="classify pictures with a trained run",
        description="Classify pictures (PNG/JPG, any size, dark-on-light or light-on-dark): "
                    "each is cropped, scaled and centred like the training images, then the "
                    "three most likely classes are printed. A picture that cannot be used "
                    "(missing, unreadable, too large, blank) gets one error line on stderr and "
                    "the others are still classified; the exit code is then 2.",
    )
    predict.add_argument("run_dir", metavar="RUN_DIR", help="the run folder `train` wrote")
    predict.add_argument("images", nargs="+", metavar="IMAGE",
                         help="picture files (PNG, JPEG, BMP, GIF, TIFF, WebP...)")
    _add_weights_choice(predict)
    predict.set_defaults(handler=cmd_predict)

    explain = commands.add_parser(
        "explain", help="a worked example of the maths, with real numbers",
        description="Print a step-by-step explanation computed with gradwise itself.",
    )
    explain.add_argument("topic", choices=("neuron", "mlp"),
                         help="neuron: one neuron's forward and backward pass; mlp: a small "
                              "network's training step")
    explain.set_defaults(handler=cmd_explain)

    lr_find = commands.add_parser(
        "lr-find", help="suggest a learning rate for a recipe",
        description="Sweep the learning rate over a short run and suggest a good one "
                    "(the learning-rate range test).",
    )
    lr_find.add_argument("recipe", nargs="?", metavar="RECIPE",
                         help=f"whose model and data to sweep (default {DEFAULT_RECIPE})")
    lr_find.add_argument("--data-dir", metavar="DIR",
                         help="folder holding the data set's IDX files (as for train)")
    lr_find.add_argument("--limit-train", type=int, metavar="N",
                         help="sweep on N training samples only")
    lr_find.add_argument("--batch-size", type=int, metavar="N",
                         help="samples per sweep step (default: the recipe's batch size)")
    lr_find.add_argument("--seed", type=int,
                         help="seed for the weights, the data order and dropout (default 0)")
    lr_find.add_argument("--out", metavar="PNG",
                         help="where to write the plot (default runs/RECIPE-lr-find.png)")
    lr_find.add_argument("--start-lr", type=float, default=1e-7, metavar="LR",
                         help="the first learning rate of the sweep (default 1e-7)")
    lr_find.add_argument("--end-lr", type=float, default=10.0, metavar="LR",
                         help="the last learning rate of the sweep (default 10); the sweep "
                              "stops earlier once the loss diverges")
    lr_find.add_argument("--num-steps", type=int, default=200, metavar="N",
                         help="training steps in the sweep, one batch each (default 200)")
    lr_find.add_argument("--suggest", choices=SUGGESTION_METHODS, default=SUGGESTION_METHODS[0],
                         help="which rule gives the suggested rate: valley (the middle of the "
                              "loss's descent, default), steep (its steepest fall) or minimum "
                              "(a tenth of the rate at the lowest loss); all three are printed")
    lr_find.add_argument("--optimizer", choices=OPTIMIZERS,
                         help="sweep with this optimizer (default: the recipe's); sweep with "
                              "the one you will train with, since a good rate depends on it")
    lr_find.add_argument("--quiet", action="store_true", help="no progress bar")
    lr_find.set_defaults(handler=cmd_lr_find)

    export = commands.add_parser(
        "export", help="write a trained run's model as ONNX",
        description="\n\n".join(textwrap.fill(paragraph, HELP_WIDTH - 1) for paragraph in (
            "Export a run's model (best weights; --weights last: the final) to an ONNX file "
            "with a dynamic batch axis.",
            "Input 'input', float32, shape (batch, *input_shape): the data as the model "
            "trained on it. For image recipes: pixels scaled to 0-1 (value / 255), then "
            "normalised with the file's metadata: (x - mean) / std. Toy recipes (xor, spiral) "
            "take the points as they are. Output 'logits', shape (batch, classes): softmax "
            "gives the probabilities, the metadata's 'classes' names them. Metadata (JSON "
            "strings): classes, mean, std, dataset.")),
        epilog="examples:\n  gradwise export runs/mnist-mlp-20240101-120000\n"
               "  gradwise export runs/my-spiral --out spiral.onnx --opset 13",
        formatter_class=_RawHelpFormatter,
    )
    export.add_argument("run_dir", metavar="RUN_DIR", help="the run folder `train` wrote")
    export.add_argument("--format", choices=("onnx",), default="onnx",
                        help="the file format (ONNX only, for now)")
    _add_weights_choice(export)
    export.add_argument("--out", metavar="FILE", help="default RUN_DIR/model.onnx")
    export.add_argument("--opset", type=int, help="ONNX opset, 13 to 21 (default 17)")
    export.set_defaults(handler=cmd_export)

    recipes = commands.add_parser("recipes", help="list the training recipes",
                                  description="List the recipes `gradwise train` knows.")
    recipes.set_defaults(handler=cmd_recipes)
    for command in commands.choices.values():
        command.root = parser  # type: ignore[attr-defined]  # for suggestions across commands
    return parser


def _add_weights_choice(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", choices=("best", "last", "last-checkpoint"), default="best",
                        help="best: the epoch with the best validation accuracy "
                             "(checkpoints/best; the default when it exists); last: the final "
                             "weights (weights.safetensors); last-checkpoint: checkpoints/last")
    _add_ignore_digest(parser)


def _add_ignore_digest(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument("--ignore-digest", action="store_true",
                        help="load weights whose SHA-256 differs from the one run.json recorded "
                             "(a warning instead of an error; to inspect a modified run)")


# ---- entry point ------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gradwise`` command with ``argv`` (default ``sys.argv[1:]``); return the exit
    code."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        _refuse_options_before_the_command(parser, argv)
        args, extras = parser.parse_known_args(argv)
        if extras:  # reported by the command they were given to, with its own --help
            command = _subcommands(parser).get(args.command or "", parser)
            command.error(f"unrecognized arguments: {' '.join(extras)}")
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        # the command owns the process: let glibc reuse each step's large freed arrays instead
        # of unmapping them (a quarter of a CNN step was page faults); see gradwise._malloc
        reuse_freed_memory()
        _refuse_copies_under_a_launcher(args)
        with _warnings_as_lines():
            return args.handler(args)
    except SystemExit as done:  # --help and --version
        return done.code if isinstance(done.code, int) else 0
    except CommandError as error:
        if _speaks_for_the_job():
            _fail(str(error), error.code)
        return error.code
    except KeyboardInterrupt:  # before the handlers are set, or a second Ctrl-C in training
        if _speaks_for_the_job():
            print("gradwise: interrupted; nothing more was saved", file=sys.stderr)
        return SIGNAL_EXIT["SIGINT"]
    except Exception as error:  # every failure becomes one line, see _classify
        code, message = _classify(error)
        if os.environ.get(DEBUG_ENV):
            traceback.print_exc()
        return _fail(message, code)


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _refuse_options_before_the_command(parser: argparse.ArgumentParser,
                                       argv: list[str]) -> None:
    """``gradwise --quiet train spiral``: an option of a subcommand given before it. argparse
    would say "unrecognized arguments: --quiet" (or, for ``--out DIR train``, that DIR is not a
    command); say instead where the option belongs, with the corrected command line.

    Raises:
        UsageError: an option before the subcommand that the subcommand knows.
    """
    commands = _subcommands(parser)
    position = next((i for i, arg in enumerate(argv) if arg in commands), None)
    if not position:
        return
    own = {option for action in parser._actions for option in action.option_strings}
    before = argv[:position]
    command = argv[position]
    known = {option for action in commands[command]._actions
             for option in action.option_strings}
    misplaced = [arg for arg in before
                 if arg.startswith("-") and arg.split("=", 1)[0] not in own
                 and arg.split("=", 1)[0] in known]
    if misplaced:
        fixed = " ".join(["gradwise", *argv[position:], *before])
        raise UsageError(f"{misplaced[0].split('=', 1)[0]} is an option of 'gradwise {command}': "
                         f"put it after the command, as in: {fixed}")


def _speaks_for_the_job() -> bool:
    """Under an MPI launcher only the first process prints job-wide messages (mpiexec forwards
    Ctrl-C and runs the same argv everywhere, so every rank meets the same error)."""
    return gw_distributed().launcher_rank() == 0


def _refuse_copies_under_a_launcher(args: argparse.Namespace) -> None:
    """``mpiexec -n 2 gradwise train xor`` without --distributed would train N independent
    copies into N folders (or fight over one): refuse, and say what was probably meant.

    Raises:
        UsageError: started by an MPI launcher with several processes, for any command but
            ``train --distributed``.
    """
    dist = gw_distributed()
    size = dist.launcher_world_size()
    if not dist.launched_by_mpi() or size == 1:
        return
    if args.command == "train" and args.distributed:
        return
    processes = f"{size} processes" if size else "several processes"
    if args.command == "train":
        raise UsageError(f"started by an MPI launcher with {processes} but without "
                         "--distributed, so each would train alone; did you mean "
                         "'mpiexec -n N gradwise train ... --distributed'?")
    raise UsageError(f"started by an MPI launcher with {processes}: '{args.command}' runs in "
                     "one process (only 'gradwise train --distributed' uses several)")


@contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """Warnings as one ``gradwise: warning:`` line each, minus those reported otherwise."""
    from gradwise.train import NonFiniteLossWarning

    def show(message: Any, category: type, *args: Any, **kwargs: Any) -> None:
        print(f"gradwise: warning: {escape_controls(_one_line(message))}", file=sys.stderr,
              flush=True)

    with warnings.catch_warnings():
        warnings.showwarning = show
        # a diverging run is reported with the doctor's diagnosis, not with numpy's words
        warnings.simplefilter("ignore", NonFiniteLossWarning)
        warnings.filterwarnings("ignore", message=".* encountered in ", category=RuntimeWarning)
        yield


def _classify(error: Exception) -> tuple[int, str]:
    """Exit code (see :data:`EXIT_CODES`) and one-line message for an exception raised while
    running a command."""
    from gradwise.autograd import AnomalyError
    from gradwise.data import DatasetNotFoundError, DownloadError, IDXError
    from gradwise.imageprep import ImagePrepError
    from gradwise.nn import StateDictError
    from gradwise.onnx import ExportError
    from gradwise.runs import RunError
    from gradwise.train import CheckpointError

    text = _one_line(error)
    if isinstance(error, (ConfigError, ImagePrepError)):
        return EXIT_USAGE, text
    if isinstance(error, (DatasetNotFoundError, DownloadError, IDXError)):
        return EXIT_DATA, text
    if isinstance(error, OSError):  # e.g. a full disk while saving
        return EXIT_SYSTEM, _os_message(error)
    if isinstance(error, (RunError, CheckpointError, StateDictError, ExportError)):
        # the OS refusing to create or read a run's files is the system's failure, not the run's
        return (EXIT_SYSTEM if isinstance(error.__cause__, OSError) else EXIT_RUN), text
    if isinstance(error, AnomalyError):
        return EXIT_DIVERGED, text
    hint = "" if os.environ.get(DEBUG_ENV) else f" (rerun with {DEBUG_ENV}=1 for the traceback)"
    return EXIT_BUG, f"unexpected {type(error).__name__}: {text}{hint}"


def _os_message(error: OSError) -> str:
    """``FILE: reason`` instead of Python's ``[Errno 13] Permission denied: 'FILE'``."""
    if error.strerror and error.filename is not None and type(error).__str__ is OSError.__str__:
        return f"{shown(error.filename)}: {error.strerror.lower()}"
    if error.strerror and error.filename is None and type(error).__str__ is OSError.__str__:
        return error.strerror  # our own worded errors: no "[Errno N]" prefix
    return _one_line(error)


def _one_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _fail(message: str, code: int) -> int:
    """Print the one error line (control characters escaped: a path holding a newline or a
    terminal escape cannot split it or act on the terminal) and return ``code``."""
    print(f"gradwise: error: {escape_controls(message)}", file=sys.stderr)
    return code


def _say(message: str = "") -> None:
    """Print a message for people; on a terminal, lines wider than it are wrapped at spaces
    (never inside a path or number), continuation lines indented two more columns. Control
    characters in each line (from class names, file names, any field of a file) are written
    as escapes, so no text from a file can drive the terminal."""
    message = "\n".join(escape_controls(line) for line in message.split("\n"))
    width = _terminal_width()
    if width is not None:
        message = "\n".join(_wrap_line(line, width) for line in message.split("\n"))
    print(message, flush=True)


def _terminal_width() -> int | None:
    """The terminal's columns when stdout is one (``COLUMNS`` wins, as in shutil), else None:
    output to a file or a pipe keeps its lines whole."""
    if not sys.stdout.isatty():
        return None
    return shutil.get_terminal_size((80, 24)).columns


def _wrap_line(line: str, width: int) -> str:
    if len(line) <= width:
        return line
    indent = line[: len(line) - len(line.lstrip())]
    return "\n".join(textwrap.wrap(line, width, subsequent_indent=indent + "  ",
                                   break_long_words=False, break_on_hyphens=False)) or line


# ---- train ------------------------------------------------------------------------------------
_FLAG_KEYS = (
    "epochs", "batch_size", "lr", "optimizer", "schedule", "dropout", "weight_decay",
    "label_smoothing", "clip_grad_norm", "seed", "limit_train", "data_dir", "doctor",
    "detect_anomaly",
)
_RESUME_KEYS = ("data_dir", "doctor", "detect_anomaly")
"""Settings a resumed run may change: they do not change what is computed."""


def _flag(key: str) -> str:
    return "--no-doctor" if key == "doctor" else "--" + key.replace("_", "-")


def cmd_train(args: argparse.Namespace) -> int:
    """``gradwise train``: build the config, train into the run folder, print the outcome.

    Returns 0, :data:`EXIT_DIVERGED` for a diverged run, or the signal's code after an interrupt
    (a checkpoint was saved). Other failures raise and :func:`main` chooses their code.
    """
    from gradwise.runs import CONFIG_NAME, StopRequest, default_run_dir, train_run

    flags = {key: getattr(args, key) for key in _FLAG_KEYS if getattr(args, key) is not None}
    labels = {key: _flag(key) for key in flags}
    _check_folder(flags.get("data_dir"), "--data-dir", DataFolderError)
    if args.resume:
        run_dir = Path(args.resume)
        config = _resume_config(args, flags, labels)
    else:
        config = _train_config(args, flags, labels)
        run_dir = Path(args.out) if args.out else default_run_dir(config.recipe)
        _check_new_folder(run_dir, "--out")
        if (run_dir / CONFIG_NAME).exists():
            raise UsageError(f"--out {shown(run_dir)} already holds a run; choose another "
                             "folder, or "
                             f"continue that run with --resume {_shell_path(run_dir)}")

    if args.distributed:
        run_dir, quiet = _join_distributed(run_dir, args.quiet)
        args.quiet = quiet
    extra_callbacks = []
    tensorboard_dir = None
    if args.tensorboard:
        from gradwise.train import TensorBoardLogger

        # one subfolder per run, named after the run folder: runs logged to one DIR side by
        # side stay apart in TensorBoard (its run selector) instead of splicing their curves
        _check_new_folder(Path(args.tensorboard), "--tensorboard")
        tensorboard_dir = Path(args.tensorboard) / run_dir.resolve().name
        try:  # before anything is printed or created: a missing package changes nothing
            extra_callbacks.append(TensorBoardLogger(tensorboard_dir))
        except ImportError as error:  # the optional package is missing: say which extra
            return _fail(str(error), EXIT_MISSING_EXTRA)
    if not args.quiet:
        ranks = gw_distributed().get_world_size() if args.distributed else 0
        _print_plan(config, run_dir, args.resume, ranks,
                    _extending(run_dir) if args.resume else None)
    stop = StopRequest()
    announce = not args.distributed or gw_distributed().get_rank() == 0
    with _stop_on_signals(stop, announce), _abort_job_on_error(args.distributed):
        outcome = train_run(
            config,
            run_dir,
            resume=bool(args.resume),
            notify=_say,
            progress=sys.stderr.isatty() and not args.quiet,
            epoch_lines=not args.quiet,
            line_width=_terminal_width(),
            stop=stop,
            distributed=args.distributed,
            extra_callbacks=extra_callbacks,
            ignore_digest=args.ignore_digest,
        )
    if outcome.interrupted and args.distributed and gw_distributed().get_rank() != 0:
        return SIGNAL_EXIT.get(stop.reason or "", SIGNAL_EXIT["SIGINT"])  # rank 0 tells
    if outcome.interrupted:
        where = (f"epoch {outcome.epoch + 1}" if outcome.mid_epoch
                 else f"the end of epoch {outcome.epoch}")
        command = f"gradwise train --resume {_shell_path(run_dir)}"
        if args.distributed:
            # a per-step schedule resumes only on the same number of ranks (DISTRIBUTED.md)
            ranks = (gw_distributed().get_world_size() if config.schedule != "none" else "N")
            command = f"mpiexec -n {ranks} {command} --distributed"
        print(
            f"Interrupted at {where}, step {outcome.step}; checkpoint saved. "
            f"Resume with: {command}",
            file=sys.stderr, flush=True,
        )
        return SIGNAL_EXIT.get(stop.reason or "", SIGNAL_EXIT["SIGINT"])
    if args.distributed and gw_distributed().get_rank() != 0:
        return EXIT_DIVERGED if outcome.diverged else 0
    _print_outcome(outcome, args.quiet, tensorboard_dir, args.tensorboard)
    if outcome.diverged:
        return _fail(f"{outcome.history.stop_reason} (see the doctor's findings above)",
                     EXIT_DIVERGED)
    return 0


def _resume_config(args: argparse.Namespace, flags: dict[str, Any],
                   labels: dict[str, str]) -> TrainConfig:
    """The config of the run ``--resume`` names, checked against its state before anything is
    printed: an interrupted run continues as it was; a finished one only with a larger
    ``--epochs`` (it is extended)."""
    from gradwise.runs import read_config, run_status
    from gradwise.runs.layout import check_run_files

    changed = [_flag(k) for k in flags if k not in (*_RESUME_KEYS, "epochs")]
    changed += ["RECIPE"] * bool(args.recipe) + ["--config"] * bool(args.config)
    changed += ["--out"] * bool(args.out)
    if changed:
        raise UsageError(
            f"--resume continues a run with the settings in its config.json; "
            f"{', '.join(changed)} cannot be given with it"
        )
    _check_folder(args.resume, "--resume", RunFolderError)
    saved = read_config(args.resume)
    status, done = run_status(args.resume)
    check_run_files(Path(args.resume))  # before the plan is printed: a refusal says only why
    epochs = flags.get("epochs")
    if status == "finished":
        if epochs is None or epochs <= done:
            more = "" if epochs is None else f" (--epochs {epochs} is not more)"
            raise UsageError(
                f"--resume {shown(args.resume)}: this run already finished its "
                f"{plural(done, 'epoch')}{more}; "
                f"to train it further, give the new total, e.g. --epochs {done + max(1, done)}"
            )
    elif epochs is not None and epochs != saved.epochs:
        raise UsageError(
            f"--resume {shown(args.resume)}: the run is not finished ({done} of {saved.epochs} "
            "epochs); resume it without --epochs first, then extend it"
        )
    return saved.updated(flags, labels)


def gw_distributed() -> Any:
    """Import and return ``gradwise.distributed`` (late: it needs mpi4py, which most commands do
    not).
    """
    import gradwise.distributed

    return gradwise.distributed


@contextmanager
def _abort_job_on_error(distributed: bool) -> Iterator[None]:
    """An error on one rank ends every rank now (the others would wait for it until timeout)."""
    try:
        yield
    except Exception as error:
        dist = gw_distributed()
        if distributed and dist.get_world_size() > 1:
            dist.abort(f"gradwise: error on rank {dist.get_rank()}: {_one_line(error)}; "
                       "ending every rank of the job")
        raise


def _join_distributed(run_dir: Path, quiet: bool) -> tuple[Path, bool]:
    """Join the MPI job: every rank uses rank 0's run folder; only rank 0 talks."""
    dist = gw_distributed()
    group = dist.init()
    if not dist.launched_by_mpi():
        _say("gradwise: --distributed without an MPI launcher: training as one process "
             "(start N with: mpiexec -n N gradwise train --distributed)")
    dist.barrier()  # every rank checked the folder before rank 0 starts writing into it
    run_dir = Path(dist.broadcast_json(str(run_dir)))  # default names carry rank 0's clock
    return run_dir, quiet or group.rank != 0


def _train_config(args: argparse.Namespace, flags: dict[str, Any],
                  labels: dict[str, str]) -> TrainConfig:
    """Recipe, then config file, then flags; every value validated, named as it was given.

    The file's values are validated on their own before the flags apply, so a bad value in
    the file is reported even when a flag overrides it (``epochs = 0`` with ``--epochs 5``),
    and so is the file's recipe when the RECIPE argument overrides it.
    """
    recipe = args.recipe
    base = TrainConfig.from_recipe(get_recipe(recipe or DEFAULT_RECIPE))
    if args.config:
        path = Path(args.config)
        from_file = read_config_file(path)
        file_recipe = from_file.pop("recipe", None)
        if file_recipe is not None:
            if not isinstance(file_recipe, str):
                raise ConfigError(f"{shown(path)}: recipe must be a string, got "
                                  f"{short_repr(file_recipe)}")
            try:
                get_recipe(file_recipe)
            except ConfigError as error:
                raise ConfigError(f"{shown(path)}: {error}") from None
            if recipe is None:
                base = TrainConfig.from_recipe(get_recipe(file_recipe))
        unknown = [key for key in from_file if key not in TrainConfig.field_names()]
        if unknown:
            hint = did_you_mean(unknown[0], TrainConfig.field_names())
            raise ConfigError(
                f"{shown(path)}: unknown setting {short_repr(unknown[0])}{hint}; known settings: "
                f"{', '.join(TrainConfig.field_names())}"
            )
        base = base.updated(from_file, {key: f"{path.name}: {key}" for key in from_file})
    return base.updated(flags, labels)


def _check_output_file(out: Path, option: str, run_dir: Path | None = None) -> None:
    """Refuse an output FILE the writer must not replace: a folder (a file name is needed;
    no default name is invented inside it), a device, FIFO or socket, a missing parent
    folder, and, with ``run_dir``, any file the run folder already holds other than its own
    ``model.onnx`` (its weights, config, checkpoints). One-line UsageError naming ``option``.
    """
    from gradwise._atomic import check_output_file

    try:
        check_output_file(out)
    except OSError as error:
        reason = error.strerror or str(error)
        what = reason.split(": it is ", 1)[-1]
        if isinstance(error, IsADirectoryError):
            what = "a folder"
        raise UsageError(f"{option} {shown(out)} is {what}; give the path of a file") from None
    _check_folder(str(out.parent), option)
    if run_dir is not None:
        target, folder = out.resolve(), run_dir.resolve()
        inside = target == folder or folder in target.parents
        if inside and (target.exists() and target != folder / "model.onnx"
                       or target.parent != folder):
            raise UsageError(f"{option} {shown(out)} is inside the run folder {shown(run_dir)} "
                             "and would overwrite the run's own files; choose another path")


def _check_folder(path: str | None, option: str,
                  error: type[CommandError] = UsageError) -> None:
    """Refuse a folder ``option`` names that is a file or does not exist, with ``error``'s
    exit code (a --data-dir is data, code 3; a --resume run folder, code 4)."""
    if path is not None and Path(path).is_file():
        raise error(f"{option} {shown(path)} is a file, not a folder")
    if path is not None and not Path(path).is_dir():
        raise error(f"{option} {shown(path)}: no such folder")


def _check_new_folder(path: Path, option: str) -> None:
    """Refuse, before anything is created, a folder to create (``--out``, ``--tensorboard``)
    that cannot be one because a file stands at its path or at one of its parents'; that is
    bad input (exit 2) however deep the file is. The OS refusing a possible path
    (permissions, a read-only file system) stays exit 6."""
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            if not candidate.is_dir():
                where = "" if candidate == path else f" ({shown(candidate)} is a file)"
                raise UsageError(f"{option} {shown(path)} cannot be a folder{where}; give "
                                 "the path of a folder")
            return


def _extending(run_dir: Path) -> int | None:
    """The epochs a finished run had, when ``--resume`` extends it; else None."""
    from gradwise.runs import run_status

    status, done = run_status(run_dir)
    return done if status == "finished" else None


def _print_plan(config: TrainConfig, run_dir: Path, resume: str | None, ranks: int = 0,
                extend_from: int | None = None) -> None:
    """The header; ``ranks``: the MPI job's size under --distributed (0: one process);
    ``extend_from``: the epochs of a finished run being extended."""
    recipe = RECIPES.get(config.recipe)
    if extend_from is not None:
        _say(f"Extending {config.recipe} from {extend_from} to {plural(config.epochs, 'epoch')} "
             "(a fresh "
             f"{config.schedule} schedule from lr {config.lr:g} for the new epochs)")
        _say(f"  run folder: {shown(run_dir)}")
        return
    verb = "Resuming" if resume else "Training"
    # the recipe names the task only; model and training are described from the settings
    # that will run (after the config file and the flags)
    _say(f"{verb} {config.recipe}" + (f": {recipe.description}" if recipe else ""))
    batch = (f"batch size {config.batch_size} per rank x {ranks} ranks = "
             f"{config.batch_size * ranks}" if ranks else f"batch size {config.batch_size}")
    _say(f"  {config.describe_model()}")
    _say(f"  {config.describe_training()}, {plural(config.epochs, 'epoch')}, {batch}, "
         f"seed {config.seed}"
         + (f", first {config.limit_train} samples" if config.limit_train else ""))
    _say(f"  run folder: {shown(run_dir)}")


def _print_outcome(outcome: Any, quiet: bool, tensorboard_dir: Path | None = None,
                   tensorboard_root: str | None = None) -> None:
    from gradwise.runs import RUN_INFO_NAME

    if outcome.history.stop_reason and not outcome.diverged:
        _say(f"Training stopped early: {outcome.history.stop_reason}")
    if outcome.test_accuracy is not None:
        # after a resume the session's time is not the run's: say which is which (run.json and
        # the report give the run's)
        wall = (f"{outcome.seconds:.1f}s" if not outcome.resumed
                else f"{outcome.seconds:.1f}s this session, {outcome.total_seconds:.1f}s in all")
        _say(f"Test accuracy: {outcome.test_accuracy:.2%} (loss {outcome.test_loss:.4f}; "
             f"weights {outcome.test_weights}), {plural(outcome.epoch, 'epoch')} in {wall}")
    if outcome.findings and not (quiet and "no problems found" in outcome.findings):
        _say(outcome.findings)
    for part in outcome.missing:
        _say(f"Not written: {part}")
    files = sorted(p.name for p in outcome.run_dir.iterdir() if not p.name.startswith("."))
    _say(f"Run folder: {shown(outcome.run_dir)}  "
         f"({', '.join(f for f in files if f != RUN_INFO_NAME)})")
    if tensorboard_dir is not None:
        _say(f"TensorBoard event files: {shown(tensorboard_dir)}  (view with: tensorboard --logdir "
             f"{_shell_path(Path(tensorboard_root or tensorboard_dir))})")
    if not (quiet or outcome.diverged):
        _say(f"Next: gradwise evaluate {_shell_path(outcome.run_dir)}")


def _shell_path(path: Path) -> str:
    text = str(path)
    if not text.isprintable():
        return shown(text)
    return f"'{text}'" if any(c.isspace() or c in "'\"$`\\" for c in text) else text


@contextmanager
def _stop_on_signals(request: StopRequest, announce: bool = True) -> Iterator[None]:
    """First SIGINT/SIGTERM: stop at the next step and checkpoint. A second SIGINT: quit now.

    ``announce``: print that the signal was received (False on ranks other than 0 of an MPI
    job, where mpiexec forwards the signal to every rank).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if request.requested:
            raise KeyboardInterrupt
        request.request(name)
        if announce:
            print(f"\n{name} received: stopping after this step and saving a checkpoint "
                  "(Ctrl-C again quits without saving)", file=sys.stderr, flush=True)

    handled = (signal.SIGINT, signal.SIGTERM)
    previous: dict[signal.Signals, Callable[..., Any] | int | None] = {}
    for handled_signal in handled:
        previous[handled_signal] = signal.signal(handled_signal, handle)
    try:
        yield
    finally:
        for handled_signal, handler in previous.items():
            signal.signal(handled_signal, handler)


# ---- evaluate, predict ------------------------------------------------------------------------
def _check_run_dir(path: str) -> Path:
    from gradwise.runs import CONFIG_NAME

    run_dir = Path(path)
    if run_dir.is_file():
        hint = (" (an exported model; give the run folder it came from)"
                if run_dir.suffix in (".onnx", ".safetensors", ".json") else "")
        raise RunFolderError(f"{shown(path)} is a file, not a run folder{hint}")
    if not run_dir.is_dir():
        raise RunFolderError(f"{shown(path)}: no such run folder")
    if not os.path.lexists(run_dir / CONFIG_NAME):  # a FIFO or link is refused when read
        raise RunFolderError(f"{shown(path)}: not a gradwise run folder (no {CONFIG_NAME})")
    return run_dir


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``gradwise evaluate``: test accuracy, accuracy per class and the top confusions."""
    from gradwise.runs import evaluate_run

    run_dir = _check_run_dir(args.run_dir)
    _check_folder(args.data_dir, "--data-dir", DataFolderError)
    result = evaluate_run(run_dir, data_dir=args.data_dir, notify=_say, weights=args.weights,
                          progress=sys.stderr.isatty(), allow_non_finite=args.allow_non_finite,
                          ignore_digest=args.ignore_digest)
    correct = int(np.trace(result.confusion))
    _say(f"{shown(run_dir)}: {result.dataset} test set, {result.samples} samples")
    _say(f"Weights: {result.weights_note}")
    _say(f"Test accuracy: {result.accuracy:.2%} ({correct}/{result.samples}), "
         f"loss {result.loss:.4f}")
    _say("Accuracy per class:")
    for line in _per_class_lines(result.confusion, result.classes):
        _say("  " + line)
    confusions = _top_confusions(result.confusion, result.classes)
    _say("Most confused (true -> predicted): " + (", ".join(confusions) or "none"))
    return 0


def _per_class_lines(matrix: np.ndarray, classes: list[str], per_line: int = 5) -> list[str]:
    totals = matrix.sum(axis=1)
    cells = [
        f"{name} {matrix[i, i] / totals[i]:.1%}" if totals[i] else f"{name} -"
        for i, name in enumerate(classes)
    ]
    return ["   ".join(cells[i : i + per_line]) for i in range(0, len(cells), per_line)]


def _top_confusions(matrix: np.ndarray, classes: list[str], count: int = 3) -> list[str]:
    off_diagonal = matrix.copy()
    np.fill_diagonal(off_diagonal, 0)
    order = np.argsort(off_diagonal, axis=None)[::-1][:count]
    pairs = [np.unravel_index(index, matrix.shape) for index in order]
    return [f"{classes[t]} -> {classes[p]} ({off_diagonal[t, p]}x)"
            for t, p in pairs if off_diagonal[t, p] > 0]


def cmd_predict(args: argparse.Namespace) -> int:
    """``gradwise predict``: the three most likely classes of each picture, one line each.

    A picture that is missing, unreadable, too large or blank gets one ``gradwise: error:``
    line on stderr and the others are still classified; the exit code is then 2
    (:data:`EXIT_USAGE`), 0 when every picture was classified.
    """
    from gradwise.runs import predict_images

    run_dir = _check_run_dir(args.run_dir)
    missing = [path for path in args.images if not os.path.lexists(path)]
    if len(missing) == len(args.images):  # nothing to classify: say so before loading the run
        raise UsageError(f"{shown(missing[0])}: no such image file")
    refused = 0
    for prediction in predict_images(run_dir, args.images, top_k=3, weights=args.weights,
                                     ignore_digest=args.ignore_digest, notify=_say,
                                     skip_bad=True):
        if prediction.error is not None:  # the others are still classified
            refused += 1
            _fail(prediction.error, EXIT_USAGE)
            continue
        ranked = ", ".join(f"{name} {probability:.1%}" for name, probability in prediction.top)
        _say(f"{shown(prediction.path)}: {ranked}")
    return EXIT_USAGE if refused else 0


# ---- explain, lr-find, recipes ----------------------------------------------------------------
def cmd_explain(args: argparse.Namespace) -> int:
    """``gradwise explain``: a worked example of backpropagation with real numbers."""
    from gradwise.viz import explain

    text = explain.explain_neuron() if args.topic == "neuron" else explain.explain_mlp()
    _say(text)
    return 0


def cmd_lr_find(args: argparse.Namespace) -> int:
    """``gradwise lr-find``: the learning-rate range test on a recipe, with a plot."""
    from gradwise.runs import find_learning_rate

    flags = {key: getattr(args, key) for key in ("data_dir", "limit_train", "batch_size", "seed",
                                                  "optimizer")
             if getattr(args, key) is not None}
    _check_folder(flags.get("data_dir"), "--data-dir", DataFolderError)
    config = TrainConfig.from_recipe(get_recipe(args.recipe or DEFAULT_RECIPE)).updated(
        flags, {key: _flag(key) for key in flags}
    )
    if not (math.isfinite(args.start_lr) and args.start_lr > 0):
        raise UsageError(f"--start-lr must be > 0, got {args.start_lr:g}")
    if not (math.isfinite(args.end_lr) and args.end_lr > args.start_lr):
        raise UsageError(f"--end-lr must be greater than --start-lr ({args.start_lr:g}), "
                         f"got {args.end_lr:g}")
    if args.num_steps < 10:
        raise UsageError(f"--num-steps must be >= 10, got {args.num_steps}")
    plot = Path(args.out) if args.out else Path("runs") / f"{config.recipe}-lr-find.png"
    _check_output_file(plot, "--out")
    sweep = {"start_lr": args.start_lr, "end_lr": args.end_lr, "num_steps": args.num_steps,
             "suggest": args.suggest, "progress": sys.stderr.isatty() and not args.quiet}
    result, written = find_learning_rate(config, plot, notify=_say, **sweep)
    _say(f"Swept {len(result.lrs)} steps of {config.optimizer} from lr {args.start_lr:g} to "
         f"{result.lrs[-1] if result.lrs else args.start_lr:.3g}"
         + (f" (stopped: {result.stop_reason})" if result.stop_reason else ""))
    for method in SUGGESTION_METHODS:
        value = result.suggestions.get(method)
        text = "none (the loss never fell)" if value is None else f"{value:.3g}"
        _say(f"  {method:<8} {text}" + ("  <- suggested" if method == result.method else ""))
    if result.suggested_lr is None:
        _say("No suggestion: the loss never fell during the sweep (see the plot).")
    else:
        same = "" if args.optimizer is None else f" --optimizer {config.optimizer}"
        _say(f"Suggested learning rate for {config.recipe} with {config.optimizer}: "
             f"{result.suggested_lr:.3g} ({result.method}; the recipe uses {config.lr:g}); "
             f"try: gradwise train {config.recipe}{same} --lr {result.suggested_lr:.3g}")
    if written is not None:
        _say(f"Plot: {shown(written)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """``gradwise export``: the run's model (its best weights, as evaluate) as an ONNX file."""
    import json

    import gradwise.onnx
    from gradwise.runs import load_run

    opset = gradwise.onnx.DEFAULT_OPSET if args.opset is None else args.opset
    supported = gradwise.onnx.SUPPORTED_OPSETS
    if opset not in supported:
        raise UsageError(f"--opset {opset} is not supported; use one of "
                         f"{supported.start}..{supported.stop - 1} (default "
                         f"{gradwise.onnx.DEFAULT_OPSET})")
    run_dir = _check_run_dir(args.run_dir)
    out = Path(args.out) if args.out else run_dir / "model.onnx"
    _check_output_file(out, "--out", run_dir)
    run = load_run(run_dir, args.weights, ignore_digest=args.ignore_digest, notify=_say)
    example = np.zeros((2, *(int(n) for n in run.info["input_shape"])), dtype=np.float32)
    metadata: dict[str, str] = {key: json.dumps(run.info[key])
                                for key in ("classes", "mean", "std", "dataset")
                                if key in run.info}
    try:
        gradwise.onnx.export(run.model, example, out, opset=opset, output_names=["logits"],
                             metadata=metadata)
    except ImportError as error:  # the optional package is missing: say which extra
        return _fail(str(error), EXIT_MISSING_EXTRA)
    except ValueError as error:  # the exporter's argument checks: one line, no traceback
        return _fail(_one_line(error), EXIT_USAGE)
    _say(f"Wrote {shown(out)} (ONNX opset {opset}, input 'input' of shape (batch, "
         f"{', '.join(str(n) for n in example.shape[1:])}), output 'logits')")
    return 0


def cmd_recipes(args: argparse.Namespace) -> int:
    """``gradwise recipes``: every recipe with its description and main settings."""
    width = max(len(name) for name in RECIPES)
    columns = _terminal_width() or 80  # to a file or a pipe: 80 columns
    for name, recipe in RECIPES.items():
        default = " (default)" if name == DEFAULT_RECIPE else ""
        config = TrainConfig.from_recipe(recipe)
        for text in (f"{recipe.description}{default}", config.describe_model(),
                     f"{config.describe_training()}, {plural(recipe.epochs, 'epoch')}, "
                     f"batch {recipe.batch_size}"):
            # wrapped here (not by _say) so that continuation lines stay in the text column
            print("\n".join(textwrap.wrap(text, columns, initial_indent=f"{name:<{width}}  ",
                                          subsequent_indent=" " * (width + 2),
                                          break_long_words=False, break_on_hyphens=False)))
            name = ""
    return 0


if __name__ == "__main__":
    sys.exit(main())
