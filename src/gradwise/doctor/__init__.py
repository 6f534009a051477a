"""gw.doctor: watches training layer by layer and says, in plain words, what is wrong.

Example:
    >>> doctor = gw.doctor.Doctor()
    >>> Trainer(model, loss_fn, optimizer, doctor=doctor).fit(data, epochs=5)  # doctest: +SKIP
    >>> print(doctor.format_findings())                                        # doctest: +SKIP
    >>> gw.doctor.lr_find(model, loss_fn, (x, y)).suggested_lr                 # doctest: +SKIP
"""

from gradwise.doctor.config import DoctorConfig
from gradwise.doctor.diagnoses import DIAGNOSES, Finding, diagnose
from gradwise.doctor.doctor import Doctor
from gradwise.doctor.lr_find import LRFindResult, lr_find
from gradwise.doctor.stats import StatsCollector, TrainingStats

__all__ = [
    "DIAGNOSES",
    "Doctor",
    "DoctorConfig",
    "Finding",
    "LRFindResult",
    "StatsCollector",
    "TrainingStats",
    "diagnose",
    "lr_find",
]
