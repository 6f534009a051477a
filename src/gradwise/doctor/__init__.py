"""gw.doctor: watches training layer by layer and says, in plain words, what is wrong.

Example:
    >>> doctor = gw.doctor.Doctor(model, optimizer)     # any training loop      # doctest: +SKIP
    >>> doctor.step(loss)                               # after optimizer.step() # doctest: +SKIP
    >>> print(doctor.report())                                                   # doctest: +SKIP
    >>> Trainer(model, loss_fn, optimizer, doctor=True)  # or with the Trainer   # doctest: +SKIP
    >>> gw.doctor.lr_find(model, loss_fn, (x, y)).suggested_lr                 # doctest: +SKIP
"""

from gradwise.doctor.config import DoctorConfig
from gradwise.doctor.diagnoses import DIAGNOSES, Finding, baseline_loss, diagnose
from gradwise.doctor.doctor import Doctor
from gradwise.doctor.lr_find import LRFindResult, lr_find
from gradwise.doctor.stats import StatsCollector, TrainingStats, subsample
from gradwise.train.trainer import set_default_doctor

# Trainer(..., doctor=True) builds a Doctor; the trainer sits below the doctor and cannot import
# it, so the doctor installs itself (import gradwise imports this package)
set_default_doctor(Doctor)

__all__ = [
    "DIAGNOSES",
    "Doctor",
    "DoctorConfig",
    "Finding",
    "LRFindResult",
    "StatsCollector",
    "TrainingStats",
    "baseline_loss",
    "diagnose",
    "lr_find",
    "subsample",
]
