"""Checkpoints: exact resume (epoch boundary and mid-epoch), verification of every file,
clear errors for damaged or mismatched checkpoints, and no checkpoint of a diverged model."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import gradwise as gw
from gradwise.data import make_moons
from gradwise.train import (
    Callback,
    CheckpointError,
    ModelCheckpoint,
    NonFiniteLossWarning,
    load_checkpoint,
    load_model_weights,
)
from gradwise.train import checkpoint as checkpoint_module
from train.train_helpers import StopAtStep, assert_same_weights, classifier_trainer, mlp

EPOCHS = 4
BATCH = 32  # 100 samples -> 4 batches per epoch, the last one short


@pytest.fixture(scope="module")
def data() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    x, y = make_moons(140, noise=0.15, seed=1)
    return (x[:100], y[:100]), (x[100:], y[100:])


def run(scheduler: str | None = "step", **kwargs):
    """A fresh, identically initialised run: dropout, Adam and (by default) a schedule."""
    model = mlp([2, 16, 16, 2], seed=7, dropout=0.25)
    extra = {"steps": EPOCHS * 4} if scheduler == "onecycle" else {}
    return classifier_trainer(model, lr=0.02, scheduler=scheduler, seed=5, **extra, **kwargs)


def comparable(history) -> list[dict]:
    return [{k: v for k, v in record.items() if k != "epoch_time"} for record in history.epochs]


@pytest.fixture(scope="module")
def straight(data):
    """The uninterrupted reference runs, one per scheduler."""
    results = {}
    for scheduler in ("step", "onecycle"):
        trainer = run(scheduler)
        history = trainer.fit(data[0], val_data=data[1], epochs=EPOCHS, batch_size=BATCH)
        results[scheduler] = (trainer, history)
    return results


def test_resume_at_an_epoch_boundary_is_bitwise_identical(data, straight, tmp_path) -> None:
    first = run()
    first.fit(data[0], val_data=data[1], epochs=2, batch_size=BATCH)
    first.save_checkpoint(tmp_path / "ckpt")

    resumed = run()
    history = resumed.fit(
        data[0], val_data=data[1], epochs=EPOCHS, batch_size=BATCH, resume_from=tmp_path / "ckpt"
    )
    reference, reference_history = straight["step"]
    assert_same_weights(resumed.model, reference.model)
    assert comparable(history) == comparable(reference_history)
    assert resumed.step == reference.step == EPOCHS * 4


@pytest.mark.parametrize(("scheduler", "stop_step"), [("step", 5), ("onecycle", 10)])
def test_resume_in_the_middle_of_an_epoch_is_bitwise_identical(
    data, straight, tmp_path, scheduler, stop_step
) -> None:
    interrupted = run(scheduler, callbacks=[StopAtStep(stop_step)])
    history = interrupted.fit(data[0], val_data=data[1], epochs=EPOCHS, batch_size=BATCH)
    assert history.stop_reason == "interrupted"
    assert interrupted.batch_in_epoch == stop_step % 4 + 1  # stopped inside an epoch
    interrupted.save_checkpoint(tmp_path / "ckpt")
    saved = load_checkpoint(tmp_path / "ckpt").trainer_state
    assert (saved["epoch"], saved["batch_in_epoch"]) == (stop_step // 4, stop_step % 4 + 1)

    resumed = run(scheduler)
    history = resumed.fit(
        data[0], val_data=data[1], epochs=EPOCHS, batch_size=BATCH, resume_from=tmp_path / "ckpt"
    )
    reference, reference_history = straight[scheduler]
    assert_same_weights(resumed.model, reference.model)
    assert comparable(history) == comparable(reference_history)
    assert history.stop_reason is None


class SaveAtStep(Callback):
    """Saves the run from inside fit, as a crash-safe "checkpoint every N steps" would."""

    def __init__(self, step: int, path: Path) -> None:
        self.save_step, self.path = step, path

    def on_batch_end(self, step: int, logs: dict) -> None:
        if step == self.save_step:
            self.trainer.save_checkpoint(self.path)


@pytest.mark.parametrize("save_step", [2, 7])  # inside epoch 1; the last batch of epoch 2
def test_resume_from_a_checkpoint_saved_in_on_batch_end(data, straight, tmp_path, save_step):
    run(callbacks=[SaveAtStep(save_step, tmp_path / "ckpt")]).fit(
        data[0], val_data=data[1], epochs=EPOCHS, batch_size=BATCH
    )
    resumed = run()
    history = resumed.fit(
        data[0], val_data=data[1], epochs=EPOCHS, batch_size=BATCH, resume_from=tmp_path / "ckpt"
    )
    assert_same_weights(resumed.model, straight["step"][0].model)
    assert comparable(history) == comparable(straight["step"][1])


def test_resume_from_a_model_checkpoint_saved_during_training(data, straight, tmp_path) -> None:
    saver = ModelCheckpoint(tmp_path / "ckpts", every_n_epochs=1, save_last=True)
    run(callbacks=[saver]).fit(data[0], val_data=data[1], epochs=3, batch_size=BATCH)
    assert sorted(p.name for p in (tmp_path / "ckpts").iterdir()) == [
        "epoch-0001", "epoch-0002", "epoch-0003", "last",
    ]
    resumed = run()
    resumed.fit(data[0], val_data=data[1], epochs=EPOCHS, batch_size=BATCH,
                resume_from=tmp_path / "ckpts" / "epoch-0002")
    assert_same_weights(resumed.model, straight["step"][0].model)


def test_resume_refuses_different_data_or_batch_size(data, tmp_path) -> None:
    trainer = run()
    trainer.fit(data[0], epochs=1, batch_size=BATCH)
    trainer.save_checkpoint(tmp_path / "ckpt")
    with pytest.raises(CheckpointError, match="100 samples in batches of 32.*batches of 16"):
        run().fit(data[0], epochs=2, batch_size=16, resume_from=tmp_path / "ckpt")
    with pytest.raises(CheckpointError, match="has a scheduler but this trainer has none"):
        run(scheduler=None).fit(data[0], epochs=2, batch_size=BATCH, resume_from=tmp_path / "ckpt")


# ---- format and verification ------------------------------------------------------------------
@pytest.fixture()
def saved(data, tmp_path) -> Path:
    trainer = run()
    trainer.fit(data[0], epochs=1, batch_size=BATCH)
    return trainer.save_checkpoint(tmp_path / "ckpt")


def array_file(directory: Path, kind: str) -> Path:
    (path,) = directory.glob(f"{kind}-*.safetensors")
    return path


def test_a_checkpoint_is_a_json_manifest_and_safetensors_files(saved) -> None:
    names = sorted(p.name for p in saved.iterdir())
    assert names[0] == "checkpoint.json" and len(names) == 3
    manifest = json.loads((saved / "checkpoint.json").read_text())
    assert manifest["format"] == "gradwise.checkpoint" and manifest["version"] == 1
    assert manifest["model"]["class"] == "Sequential"
    assert manifest["model"]["tensors"]["0.weight"] == {"shape": [16, 2], "dtype": "float32"}
    assert manifest["trainer"]["epoch"] == 1
    # the weights file is plain safetensors, readable without gradwise
    import safetensors.numpy

    weights = safetensors.numpy.load_file(str(array_file(saved, "model")))
    assert weights["0.weight"].shape == (16, 2)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-10])


def flip_last_byte(path: Path) -> None:
    payload = bytearray(path.read_bytes())
    payload[-1] ^= 0x01
    path.write_bytes(bytes(payload))


def edit_manifest(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(path: Path) -> None:
        manifest = json.loads(path.read_text())
        change(manifest)
        path.write_text(json.dumps(manifest))

    return apply


@pytest.mark.parametrize(
    ("target", "damage", "message"),
    [
        ("model", truncate, r"model-\w+\.safetensors: model file is \d+ bytes, .*truncated"),
        ("model", flip_last_byte, r"model-\w+\.safetensors: model file is altered: SHA-256"),
        ("optimizer", flip_last_byte, r"optimizer-\w+\.safetensors: optimizer file is altered"),
        ("model", Path.unlink, r"model-\w+\.safetensors: model file named by the manifest is"),
        ("manifest", truncate, r"checkpoint\.json: unreadable manifest \(truncated or altered"),
        ("manifest", edit_manifest(lambda m: m.update(version=99)), "format version 99"),
        ("manifest", edit_manifest(lambda m: m.pop("format")), "not a gradwise checkpoint"),
        # a bit flip in a section's key (found by the fuzzer: 'optimizer' -> 'optimizes')
        ("manifest", edit_manifest(lambda m: m.update(optimizes=m.pop("optimizer"))),
         "no optimizer section"),
        (
            "manifest",
            edit_manifest(lambda m: m["files"]["model"].update(file="../evil.safetensors")),
            "model file entry: bad file name",
        ),
        (
            "manifest",
            edit_manifest(lambda m: m["optimizer"]["meta"].update(state=None)),
            "malformed manifest: the optimizer state is not",
        ),
        (
            "manifest",
            edit_manifest(lambda m: m["trainer"].update(x={"__float__": "big"})),
            "malformed manifest: bad non-finite number tag 'big'",
        ),
    ],
)
def test_damaged_checkpoints_raise_checkpoint_error_naming_the_file(
    saved, target, damage, message
) -> None:
    path = saved / "checkpoint.json" if target == "manifest" else array_file(saved, target)
    damage(path)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(saved)
    with pytest.raises(CheckpointError):
        run().fit((np.zeros((100, 2), np.float32), np.zeros(100, np.int64)), epochs=2,
                  batch_size=BATCH, resume_from=saved)


def test_missing_checkpoint_directory_is_reported(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="no such checkpoint directory"):
        load_checkpoint(tmp_path / "nowhere")
    with pytest.raises(CheckpointError, match="no checkpoint manifest here"):
        load_checkpoint(tmp_path)


def test_a_checkpoint_of_another_model_lists_the_mismatched_keys_and_shapes(saved) -> None:
    other = gw.nn.Sequential(gw.nn.Linear(2, 8), gw.nn.ReLU(), gw.nn.Linear(8, 2))
    with pytest.raises(CheckpointError) as caught:
        load_model_weights(saved, other)
    message = str(caught.value)
    assert "does not fit this model" in message
    assert "0.weight: checkpoint (16, 2) vs model (8, 2)" in message
    assert "not in the model: 3.weight, 3.bias, 6.weight, 6.bias" in message
    assert "missing from the checkpoint: 2.weight, 2.bias" in message


def test_load_model_weights_restores_exactly_the_saved_weights(saved) -> None:
    model = mlp([2, 16, 16, 2], seed=99, dropout=0.25)
    data = load_model_weights(saved, model)
    for name, value in model.state_dict().items():
        assert np.asarray(value).tobytes() == data.model_state[name].tobytes()


# ---- consistency and refusal to save a diverged model -----------------------------------------
def test_saving_again_replaces_the_files_and_removes_stale_ones(data, saved) -> None:
    # temp files that a save killed mid-write (SIGKILL) would leave behind
    leftovers = [".model-0123.safetensors.abc.tmp", ".checkpoint.json.xyz.tmp"]
    for name in leftovers:
        (saved / name).write_bytes(b"partial")
    trainer = run()
    trainer.fit(data[0], epochs=2, batch_size=BATCH)
    trainer.save_checkpoint(saved)
    assert len(list(saved.glob("*.safetensors"))) == 2
    assert not any((saved / name).exists() for name in leftovers)
    assert load_checkpoint(saved).trainer_state["epoch"] == 2


def test_a_crash_while_saving_leaves_the_previous_checkpoint_loadable(
    data, saved, monkeypatch
) -> None:
    trainer = run()
    trainer.fit(data[0], epochs=3, batch_size=BATCH)
    real_write = checkpoint_module.atomic_write_bytes

    def crash_on_manifest(path, payload):
        if Path(path).name == "checkpoint.json":
            raise OSError("disk full")
        real_write(path, payload)

    monkeypatch.setattr(checkpoint_module, "atomic_write_bytes", crash_on_manifest)
    with pytest.raises(OSError, match="disk full"):
        trainer.save_checkpoint(saved)
    monkeypatch.undo()
    assert load_checkpoint(saved).trainer_state["epoch"] == 1  # the old one, intact


def test_non_finite_weights_are_never_checkpointed(data, tmp_path) -> None:
    trainer = run()
    trainer.fit(data[0], epochs=1, batch_size=BATCH)
    next(iter(trainer.model.parameters())).data[0, 0] = np.nan
    with pytest.raises(CheckpointError, match=r"non-finite values in 0\.weight"):
        trainer.save_checkpoint(tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_diverging_run_with_model_checkpoint_writes_no_bad_checkpoint(data, tmp_path) -> None:
    model = mlp([2, 16, 2], seed=1)
    trainer = classifier_trainer(
        model, lr=1e8, optimizer="sgd", callbacks=[ModelCheckpoint(tmp_path, save_last=True)]
    )
    with pytest.warns(NonFiniteLossWarning), np.errstate(all="ignore"):
        trainer.fit(data[0], epochs=20, batch_size=BATCH)
    for manifest in tmp_path.glob("*/checkpoint.json"):
        for array in load_checkpoint(manifest.parent).model_state.values():
            assert np.isfinite(array).all()
