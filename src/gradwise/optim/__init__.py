"""Optimizers and learning-rate schedules with PyTorch's names, defaults and update rules.

Example:
    >>> opt = gw.optim.AdamW(model.parameters(), lr=1e-3)
    >>> sched = gw.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=1000)
    >>> for x, y in loader:
    ...     opt.zero_grad()
    ...     F.cross_entropy(model(x), y).backward()
    ...     opt.step()
    ...     sched.step()
"""

from gradwise.optim import lr_scheduler
from gradwise.optim.adadelta import Adadelta
from gradwise.optim.adagrad import Adagrad
from gradwise.optim.adam import Adam, AdamW
from gradwise.optim.adam_variants import Adamax, NAdam, RAdam
from gradwise.optim.asgd import ASGD
from gradwise.optim.lbfgs import LBFGS
from gradwise.optim.optimizer import Optimizer, join_state, split_state
from gradwise.optim.rmsprop import RMSprop
from gradwise.optim.rprop import Rprop
from gradwise.optim.sgd import SGD

__all__ = [
    "ASGD",
    "LBFGS",
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "NAdam",
    "RAdam",
    "Optimizer",
    "RMSprop",
    "Rprop",
    "join_state",
    "lr_scheduler",
    "split_state",
]
