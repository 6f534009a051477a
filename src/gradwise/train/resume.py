"""Resuming a run exactly: what a checkpoint must restore and the checks before trusting it.

A resumed run must equal an uninterrupted one in weights, history, ``best/`` and stop epoch.
That needs everything that decides the rest of the run: weights, optimizer and scheduler
state, every Generator, the position in the epoch and its running totals, and the state of
every callback that keeps some (EarlyStopping's patience and best, ModelCheckpoint's best,
the doctor's windows...). Any callback with ``state_dict()`` / ``load_state_dict(state)`` is
saved generically, under a key made of its class name (``EarlyStopping``, ``EarlyStopping#2``
for a second one, ``doctor`` for the trainer's doctor). States are JSON data and may hold
NumPy arrays (kept in a safetensors file of the checkpoint).

When loading: the trainer restores weights, optimizer, scheduler, Generators and counters,
calls every ``on_train_begin`` (which resets the callbacks), and then hands each callback its
saved state. A callback may act on its state then (EarlyStopping that had decided to stop asks
the trainer to stop again, so a run killed after that decision does not train on).

The checkpoint is untrusted input: counters must be integers in range and agree with each
other and with the history (a state of epoch -5 and step 10^30 is refused, naming the field).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable
from typing import Any, NamedTuple

from gradwise.train.checkpoint import CheckpointError, load_checkpoint
from gradwise.train.events import TrainerView
from gradwise.train.history import History

__all__ = [
    "DOCTOR_KEY",
    "TRAINER_STATE_VERSION",
    "Restored",
    "callback_states",
    "check_trainer_state",
    "load_callback_states",
    "restore",
    "stateful_callbacks",
]

TRAINER_STATE_VERSION = 2
"""2 added the callbacks' states; version 1 checkpoints resume with fresh callbacks (a warning)."""
_READABLE_VERSIONS = (1, 2)
DOCTOR_KEY = "doctor"
_MAX_COUNTER = 2**53  # beyond this a float64 history or a JSON reader loses exactness


def stateful_callbacks(callbacks: Iterable[Any], doctor: Any = None) -> dict[str, Any]:
    """``{key: callback}`` for every callback with ``state_dict`` and ``load_state_dict``.

    Keys are class names, numbered from the second of a class on (``EarlyStopping#2``); the
    doctor's key is ``"doctor"``. The same callbacks in the same order give the same keys.
    """
    keyed: dict[str, Any] = {}
    seen: dict[str, int] = {}
    for callback in callbacks:
        if not _has_state(callback):
            continue
        name = type(callback).__name__
        seen[name] = seen.get(name, 0) + 1
        keyed[name if seen[name] == 1 else f"{name}#{seen[name]}"] = callback
    if doctor is not None and _has_state(doctor):
        keyed[DOCTOR_KEY] = doctor
    return keyed


def _has_state(callback: Any) -> bool:
    return callable(getattr(callback, "state_dict", None)) and callable(
        getattr(callback, "load_state_dict", None)
    )


def callback_states(callbacks: Iterable[Any], doctor: Any = None) -> dict[str, Any]:
    """Every stateful callback's ``state_dict()``, by key (see :func:`stateful_callbacks`)."""
    return {key: callback.state_dict()
            for key, callback in stateful_callbacks(callbacks, doctor).items()}


def load_callback_states(
    callbacks: Iterable[Any], doctor: Any, saved: dict[str, Any] | None, where: Any
) -> None:
    """Hand each stateful callback its saved state.

    A callback with no saved state is an error (its decisions would differ from the
    interrupted run's), except the doctor, which only watches and may be switched on at a
    resume. Saved states of callbacks no longer present are ignored.

    Raises:
        CheckpointError: a state is missing or its callback refuses it (naming the key).
    """
    keyed = stateful_callbacks(callbacks, doctor)
    if saved is None:
        if keyed:
            warnings.warn(
                f"{where}: this checkpoint predates saved callback states; "
                f"{', '.join(keyed)} start afresh, so the resumed run may differ",
                RuntimeWarning, stacklevel=3,
            )
        return
    for key, callback in keyed.items():
        if key not in saved:
            if key == DOCTOR_KEY:
                continue
            raise CheckpointError(
                f"{where}: the checkpoint has no state for callback {key} (it has "
                f"{', '.join(sorted(saved)) or 'none'}); resume with the callbacks of the "
                "interrupted run"
            )
        try:
            callback.load_state_dict(saved[key])
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise CheckpointError(
                f"{where}: cannot restore callback {key}: {type(error).__name__}: "
                f"{str(error)[:200]}"
            ) from error


def _counter(state: dict[str, Any], name: str, where: Any, low: int = 0,
             high: int = _MAX_COUNTER) -> int:
    value = state.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        shown = repr(value) if len(repr(value)) < 40 else repr(value)[:37] + "..."
        raise CheckpointError(
            f"{where}: trainer state {name} is {shown}; it must be an integer in "
            f"[{low}, {high}]"
        )
    return value


def check_trainer_state(state: dict[str, Any], where: Any, batches_per_epoch: int,
                        history_length: int | None) -> None:
    """Refuse impossible counters before anything is restored.

    Checks: version known; ``epoch``, ``step``, ``batch_in_epoch`` integers >= 0; the
    position in the epoch inside the epoch; ``step`` no more than the batches of the epochs
    begun; the history holding one record per completed epoch.

    Raises:
        CheckpointError: naming the field and the value.
    """
    version = state.get("version")
    if isinstance(version, bool) or version not in _READABLE_VERSIONS:
        raise CheckpointError(f"{where}: trainer state version {version!r} is not supported")
    epoch = _counter(state, "epoch", where)
    step = _counter(state, "step", where)
    _counter(state, "batch_in_epoch", where, 0, batches_per_epoch)
    if step > (epoch + 1) * batches_per_epoch:
        raise CheckpointError(
            f"{where}: trainer state step {step} is more than {epoch + 1} epochs of "
            f"{batches_per_epoch} batches can take"
        )
    if history_length is not None and history_length != epoch:
        raise CheckpointError(
            f"{where}: the history holds {history_length} epochs but the trainer state says "
            f"{epoch} were completed"
        )
    for name in ("rng_state", "seed"):
        if name not in state:
            raise CheckpointError(f"{where}: trainer state has no {name}")


_GENERATOR_INT_BITS = 128
"""Widest integer in any NumPy bit generator's state (PCG64's ``state`` and ``inc``)."""


def check_generator_state(saved: Any, generator: Any, field: str, where: Any) -> None:
    """Refuse a saved ``bit_generator.state`` that ``generator`` could not take, before any
    part of the run is restored (a forged ``state.state = 10**60`` used to surface as
    "Python int too large to convert to C long" after the model was already loaded).

    Checks, against a fresh generator of the same kind: the bit generator name; the same
    keys and value kinds at every level; every int in ``[0, 2**128)`` (NumPy's own widths:
    PCG64 128-bit state and increment, 32/64-bit words elsewhere, which the trial below
    catches); finally the state is set on a scratch generator, so whatever NumPy itself
    refuses is refused here, naming the field.

    Raises:
        CheckpointError: naming ``field`` (``trainer.rng_state.state.state`` ...) and why.
    """
    import numpy as np

    bit_generator = generator.bit_generator
    expected = bit_generator.state

    def refuse(path: str, reason: str) -> CheckpointError:
        return CheckpointError(f"{where}: trainer state {path} {reason}")

    def walk(value: Any, model: Any, path: str) -> None:
        if isinstance(model, dict):
            if not isinstance(value, dict):
                raise refuse(path, f"must be an object, got {type(value).__name__}")
            if set(value) != set(model):
                raise refuse(path, f"has keys {sorted(map(str, value))[:8]}, expected "
                             f"{sorted(model)}")
            for key in model:
                walk(value[key], model[key], f"{path}.{key}")
        elif isinstance(model, str):
            if value != model:
                raise refuse(path, f"is {str(value)[:40]!r}, this run uses {model!r}")
        elif isinstance(model, int | np.integer | np.ndarray):
            items = value if isinstance(model, np.ndarray) else [value]
            if isinstance(model, np.ndarray) and (
                not isinstance(value, list) or len(value) != model.size
            ):
                raise refuse(path, f"must be a list of {model.size} integers")
            for item in items:
                if isinstance(item, bool) or not isinstance(item, int) or not (
                    0 <= item < 1 << _GENERATOR_INT_BITS
                ):
                    text = repr(item) if len(repr(item)) < 40 else repr(item)[:37] + "..."
                    raise refuse(path, f"is {text}; it must be an integer in [0, "
                                 f"2**{_GENERATOR_INT_BITS})")

    walk(saved, expected, field)
    scratch = type(bit_generator)()
    try:
        scratch.state = saved
    except (TypeError, ValueError, OverflowError, KeyError) as error:
        raise refuse(field, f"is not a valid {expected.get('bit_generator')} state: "
                     f"{str(error)[:120]}") from None


def check_rng_states(state: dict[str, Any], where: Any, trainer: TrainerView,
                     loader: Any = None) -> None:
    """:func:`check_generator_state` for the trainer's generator, the model's own ones
    (Dropout's) and the data loader's shuffling generator."""
    import numpy as np

    check_generator_state(state.get("rng_state"), trainer.rng, "rng_state", where)
    loader_state, loader_rng = state.get("loader_state"), getattr(loader, "_rng", None)
    if isinstance(loader_state, dict) and isinstance(loader_rng, np.random.Generator) and (
        "rng_state" in loader_state
    ):
        check_generator_state(loader_state["rng_state"], loader_rng, "loader_state.rng_state",
                              where)
    saved = state.get("model_rng_state")
    if saved is None or not hasattr(trainer.model, "rng_state"):
        return
    from gradwise.nn.parallel import DistributedDataParallel

    model = trainer.model
    if isinstance(model, DistributedDataParallel):  # its rng_state() is the wrapped model's
        model = model.module
    owners = {name: module.__dict__["rng"] for name, module in model.named_modules()
              if isinstance(module.__dict__.get("rng"), np.random.Generator)}
    if not isinstance(saved, dict) or set(saved) != set(owners):
        names = sorted(map(str, saved))[:8] if isinstance(saved, dict) else type(saved).__name__
        raise CheckpointError(f"{where}: trainer state model_rng_state names {names}; the "
                              f"model's generators are at {sorted(owners)[:8]}")
    for name, generator in owners.items():
        check_generator_state(saved[name], generator, f"model_rng_state[{name!r}]", where)


class Restored(NamedTuple):
    """What :func:`restore` hands back to the trainer besides what it loaded in place."""

    epoch_totals: dict[str, Any] | None
    """The running totals of the epoch in progress (None at an epoch boundary)."""
    callback_states: dict[str, Any] | None
    """The saved callback states, for :func:`load_callback_states` after ``on_train_begin``
    (None for a checkpoint older than saved callback states)."""
    where: Any
    """The checkpoint's path, for messages."""


def restore(
    trainer: TrainerView,
    path: str | os.PathLike[str],
    loader: Any,
    data_fingerprint: dict[str, Any] | None,
) -> Restored:
    """Load a checkpoint into the trainer's model, optimizer, scheduler, loader and counters.

    Args:
        trainer: the Trainer resuming (its ``epochs_target`` and ``batches_per_epoch`` set for
            this fit).
        path: the checkpoint directory.
        loader: this fit's training loader (its shuffling state is restored).
        data_fingerprint: this fit's data (samples, batch size, batches per epoch); the
            checkpoint's must equal it.

    Returns:
        :class:`Restored`: the epoch's running totals and the callback states to hand over
        after ``on_train_begin``.

    Raises:
        CheckpointError: the checkpoint is damaged, impossible, or does not fit this trainer
            (model, optimizer, scheduler, data, metrics), naming what differs.
    """
    data = load_checkpoint(path, trainer.model)
    where = data.path
    state = data.trainer_state
    history = data.history
    history_length = None
    if history is not None:
        try:
            restored_history = History.from_dict(history)
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"{where}: the saved history is malformed: {error}") from error
        history_length = len(restored_history)
    check_trainer_state(state, where, trainer.batches_per_epoch, history_length)
    saved_fingerprint = state.get("data")
    if saved_fingerprint and saved_fingerprint != data_fingerprint:
        raise CheckpointError(
            f"{where}: the checkpoint was taken on {_describe(saved_fingerprint)}, but fit "
            f"was given {_describe(data_fingerprint)}; resume with the same data and "
            "batch_size"
        )
    _check_position(state, where, trainer)
    check_rng_states(state, where, trainer, loader)
    if data.optimizer_state is None:
        raise CheckpointError(f"{where}: the checkpoint holds no optimizer state")
    if state.get("optimizer_class") != type(trainer.optimizer).__name__:
        raise CheckpointError(
            f"{where}: the checkpoint's optimizer is {state.get('optimizer_class')}, this "
            f"trainer's is {type(trainer.optimizer).__name__}"
        )
    saved_scheduler = data.scheduler_state
    if (saved_scheduler is None) != (trainer.scheduler is None):
        raise CheckpointError(
            f"{where}: the checkpoint {'has no' if saved_scheduler is None else 'has a'} "
            f"scheduler but this trainer {'has one' if trainer.scheduler else 'has none'}"
        )
    if trainer.scheduler is not None and (
        not isinstance(saved_scheduler, dict)
        or saved_scheduler.get("class") != type(trainer.scheduler).__name__
    ):
        saved_class = saved_scheduler.get("class") if isinstance(saved_scheduler, dict) else None
        raise CheckpointError(
            f"{where}: the checkpoint's scheduler is {saved_class}, this "
            f"trainer's is {type(trainer.scheduler).__name__}"
        )
    epoch_totals = state.get("epoch_totals")
    resumable = state.get("loader_state") is not None and hasattr(loader, "load_state_dict")
    if epoch_totals is not None and not resumable:
        raise CheckpointError(
            f"{where}: a mid-epoch checkpoint needs a resumable DataLoader and its state"
        )
    if epoch_totals is not None:
        _check_totals(epoch_totals, where)
    try:
        trainer.model.load_state_dict(data.model_state)
        trainer.optimizer.load_state_dict(data.optimizer_state)
        if trainer.scheduler is not None and saved_scheduler is not None:  # both or neither
            trainer.scheduler.load_state_dict(saved_scheduler["state"])
        if state.get("loader_state") is not None and hasattr(loader, "load_state_dict"):
            loader.load_state_dict(state["loader_state"])
        if state.get("model_rng_state") is not None and hasattr(trainer.model, "set_rng_state"):
            trainer.model.set_rng_state(state["model_rng_state"])
        trainer.rng.bit_generator.state = state["rng_state"]
    except (KeyError, TypeError, ValueError, OverflowError) as error:
        raise CheckpointError(f"{where}: cannot restore the run: {error}") from error
    trainer.step = int(state["step"])
    trainer.epoch = int(state["epoch"])
    trainer.batch_in_epoch = int(state["batch_in_epoch"])
    if history is not None:
        trainer.history = restored_history
        trainer.history.stop_reason = None  # why the interrupted fit ended; this one goes on
    if trainer.distributed is not None:
        epoch_totals = trainer.distributed.restore(trainer, state, epoch_totals)
    callback_states = data.callbacks_state if state.get("version", 0) >= 2 else None
    return Restored(epoch_totals, callback_states, where)


def _check_position(state: dict[str, Any], where: Any, trainer: TrainerView) -> None:
    """The checkpoint's counters against this fit: ``step`` must be exactly the batches done
    (``epoch * batches_per_epoch + batch_in_epoch``: one optimizer step per batch), the
    epoch no later than ``epochs`` asked, and ``seed`` an integer equal to the trainer's (a
    changed seed would silently change the shuffling and dropout of the resumed epochs).

    Raises:
        CheckpointError: naming the field, the saved value and what this run expects.
    """
    epoch, step, batch = int(state["epoch"]), int(state["step"]), int(state["batch_in_epoch"])
    if trainer.distributed is None:
        expected = epoch * trainer.batches_per_epoch + batch
        if step != expected:
            raise CheckpointError(
                f"{where}: trainer state step {step} does not match epoch {epoch} and "
                f"batch_in_epoch {batch} with {trainer.batches_per_epoch} batches per epoch "
                f"(expected {expected})"
            )
    if epoch > trainer.epochs_target:
        raise CheckpointError(
            f"{where}: the checkpoint has completed {epoch} epochs but this run asks for "
            f"epochs={trainer.epochs_target}; resume with epochs >= {epoch}"
        )
    seed = state.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise CheckpointError(f"{where}: trainer state seed is {str(seed)[:40]!r}; it must be "
                              "an integer")
    if seed != trainer.seed:
        raise CheckpointError(
            f"{where}: trainer state seed is {seed} but this run's seed is {trainer.seed}; "
            "resume with the seed the run started with"
        )


def _check_totals(totals: Any, where: Any) -> None:
    if not isinstance(totals, dict) or not isinstance(totals.get("metrics"), dict):
        raise CheckpointError(f"{where}: the epoch's running totals are malformed")
    for name in ("samples", "batches"):
        _counter(totals, name, where)
    for name in ("loss_sum", "seconds"):
        value = totals.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
            value
        ):
            raise CheckpointError(f"{where}: the epoch's running {name} is {value!r}")


def _describe(fingerprint: dict[str, Any] | None) -> str:
    if not fingerprint:
        return "unknown data"
    return f"{fingerprint.get('samples')} samples in batches of {fingerprint.get('batch_size')}"
