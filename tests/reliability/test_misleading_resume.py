"""Resume refuses what it cannot continue honestly (h5fix item 6): last/ missing with best/
present, config epochs edited below the checkpoint, inconsistent step, bad or changed seed."""

from __future__ import annotations

import json
import shutil

import pytest

from gradwise.cli import main


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("mis") / "xor"
    assert main(["train", "xor", "--epochs", "3", "--out", str(run_dir), "--quiet"]) == 0
    return run_dir


@pytest.fixture
def interrupted(finished, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(finished, run_dir)
    info = json.loads((run_dir / "run.json").read_text())
    info.update(status="interrupted", interrupted_by="SIGINT")
    (run_dir / "run.json").write_text(json.dumps(info))
    return run_dir


def _snapshot(run_dir):
    return {p: p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


def _refused(run_dir, capsys, fragment, *extra):
    before = _snapshot(run_dir)
    code = main(["train", "--resume", str(run_dir), "--quiet", *extra])
    err = capsys.readouterr().err
    assert code not in (0, 1), err
    assert fragment in err and err.count("\n") == 1, err
    assert _snapshot(run_dir) == before


def _edit_trainer(run_dir, **changes):
    manifest = run_dir / "checkpoints" / "last" / "checkpoint.json"
    data = json.loads(manifest.read_text())
    data["trainer"].update(changes)
    manifest.write_text(json.dumps(data))
    # unpinned (a run from before the digests, or a forger who edited run.json too): the
    # trainer-state checks behind the digest must refuse it on their own
    info = json.loads((run_dir / "run.json").read_text())
    info.pop("checkpoint_sha256", None)
    (run_dir / "run.json").write_text(json.dumps(info))


def test_missing_last_with_best_present_is_refused(interrupted, capsys):
    shutil.rmtree(interrupted / "checkpoints" / "last")
    _refused(interrupted, capsys, "checkpoint.json is missing")


def test_config_epochs_below_the_checkpoint_is_refused(interrupted, capsys):
    config = json.loads((interrupted / "config.json").read_text())
    config["epochs"] = 1
    (interrupted / "config.json").write_text(json.dumps(config))
    _refused(interrupted, capsys, "epochs=1")


@pytest.mark.parametrize("changes, fragment", [
    ({"step": 1}, "step 1 does not match"),
    ({"seed": "x"}, "seed is 'x'"),
    ({"seed": 12345}, "this run's seed"),
])
def test_inconsistent_trainer_state_is_refused(interrupted, capsys, changes, fragment):
    _edit_trainer(interrupted, **changes)
    _refused(interrupted, capsys, fragment)
