"""A refused --resume changes no file (h5fix item 4): run.json keeps status interrupted and
interrupted_by, gets no "resumed", and config.json is untouched."""

from __future__ import annotations

import json

from gradwise.cli import main


def _snapshot(run_dir):
    return {p: p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


def test_refused_resume_leaves_the_folder_byte_for_byte(tmp_path, capsys):
    run_dir = tmp_path / "xor"
    assert main(["train", "xor", "--epochs", "2", "--out", str(run_dir), "--quiet"]) == 0
    info_path = run_dir / "run.json"
    info = json.loads(info_path.read_text())
    info.update(status="interrupted", interrupted_by="SIGINT", epoch=1)
    info.pop("checkpoint_sha256")  # so that the trainer-state check, not the digest, refuses
    info_path.write_text(json.dumps(info))
    # break the checkpoint's trainer state: the resume must be refused at load
    manifest = run_dir / "checkpoints" / "last" / "checkpoint.json"
    data = json.loads(manifest.read_text())
    data["trainer"]["epoch"] = -5
    manifest.write_text(json.dumps(data))
    before = _snapshot(run_dir)
    code = main(["train", "--resume", str(run_dir), "--quiet"])
    err = capsys.readouterr().err
    assert code != 0 and "unexpected" not in err, err
    assert "epoch" in err, err
    assert _snapshot(run_dir) == before
    after = json.loads(info_path.read_text())
    assert after["status"] == "interrupted" and after["interrupted_by"] == "SIGINT"
    assert "resumed" not in after


def test_accepted_resume_still_records_running_and_resumed(tmp_path, capsys):
    run_dir = tmp_path / "xor"
    assert main(["train", "xor", "--epochs", "1", "--out", str(run_dir), "--quiet"]) == 0
    assert main(["train", "--resume", str(run_dir), "--epochs", "2", "--quiet"]) == 0
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "finished" and info["resumed"] == 1
    assert json.loads((run_dir / "config.json").read_text())["epochs"] == 2
