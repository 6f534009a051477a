"""The events module below the trainer and the doctor: the Callback base, the TrainerView a
callback sees, and how ``Trainer(doctor=True)`` finds the Doctor without importing it."""

from __future__ import annotations

import os
import subprocess
import sys
import typing

import pytest

import gradwise as gw
import gradwise.doctor
import gradwise.train.callbacks
import gradwise.train.trainer as trainer_module
from gradwise.train.events import EVENTS, Callback, TrainerView
from train.train_helpers import classifier_trainer


def test_the_public_paths_name_the_one_callback_base() -> None:
    assert gw.train.Callback is Callback is gradwise.train.callbacks.Callback
    assert gradwise.train.callbacks.EVENTS is EVENTS
    assert issubclass(gradwise.doctor.Doctor, Callback)
    for name in gw.train.__all__:
        assert getattr(gw.train, name) is not None, name
    assert set(EVENTS) == {name for name in vars(Callback) if name.startswith("on_")}


def test_a_trainer_has_everything_its_view_promises() -> None:
    # TrainerView is what callbacks and resume may use of a Trainer; mypy checks it where the
    # trainer passes itself (resume.restore), this checks a built Trainer has every member
    trainer = classifier_trainer(doctor=True)
    attributes = typing.get_type_hints(TrainerView)
    methods = [name for name, value in vars(TrainerView).items()
               if callable(value) and not name.startswith("_")]
    assert {"model", "history", "stop_reason", "doctor"} <= set(attributes)
    assert set(methods) == {"request_stop", "save_checkpoint", "running_logs"}
    missing = [name for name in [*attributes, *methods] if not hasattr(trainer, name)]
    assert not missing, f"Trainer lacks TrainerView members {missing}"


def test_doctor_true_builds_a_new_doctor_per_trainer() -> None:
    first, second = classifier_trainer(doctor=True), classifier_trainer(doctor=True)
    assert isinstance(first.doctor, gradwise.doctor.Doctor)
    assert first.doctor is not second.doctor


def test_doctor_true_builds_what_set_default_doctor_installed(monkeypatch) -> None:
    class QuietDoctor(Callback):
        pass

    monkeypatch.setattr(trainer_module, "_default_doctor", trainer_module._default_doctor)
    trainer_module.set_default_doctor(QuietDoctor)
    assert type(classifier_trainer(doctor=True).doctor) is QuietDoctor
    trainer_module.set_default_doctor(None)
    with pytest.raises(ValueError, match=r"doctor=True .* none is installed .*Doctor\(\)"):
        classifier_trainer(doctor=True)
    assert classifier_trainer(doctor=False).doctor is None  # only doctor=True needs one
    with pytest.raises(TypeError, match="set_default_doctor: factory must be callable.*str"):
        trainer_module.set_default_doctor("Doctor")


def test_doctor_true_works_when_the_trainer_module_is_imported_first() -> None:
    # a fresh interpreter whose first import is the trainer's own module: importing it imports
    # the gradwise package first, which imports gradwise.doctor, which installs the Doctor
    code = ("import gradwise.train.trainer as t, gradwise as gw\n"
            "m = gw.nn.Linear(2, 2)\n"
            "d = t.Trainer(m, gw.nn.MSELoss(), gw.optim.SGD(m.parameters(), lr=0.1),"
            " progress=False, doctor=True).doctor\n"
            "print(type(d).__module__, type(d).__name__)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["gradwise.doctor.doctor", "Doctor"]
