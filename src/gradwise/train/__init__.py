"""gw.train: the training loop, callbacks, checkpoints, metrics and history.

Example:
    >>> from gradwise.train import Trainer, EarlyStopping
    >>> trainer = Trainer(model, gw.nn.CrossEntropyLoss(), gw.optim.Adam(model.parameters()),
    ...                   callbacks=[EarlyStopping(patience=3)], progress="lines")
    >>> history = trainer.fit((x, y), val_data=(x_val, y_val), epochs=20)  # doctest: +SKIP
"""

from gradwise.train import metrics
from gradwise.train.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    EpochSummary,
    JSONLinesLogger,
    LearningRateScheduler,
    ModelCheckpoint,
    ProgressBar,
    TerminateOnNaN,
    format_epoch_summary,
)
from gradwise.train.checkpoint import (
    CheckpointData,
    CheckpointError,
    load_checkpoint,
    load_model_weights,
    save_checkpoint,
)
from gradwise.train.history import History
from gradwise.train.metrics import (
    accuracy,
    confusion_matrix,
    f1_score,
    precision,
    recall,
    top_k_accuracy,
)
from gradwise.train.tensorboard import TensorBoardLogger
from gradwise.train.trainer import DEFAULT_METRICS, NonFiniteLossWarning, Trainer

__all__ = [
    "TensorBoardLogger",
    "DEFAULT_METRICS",
    "CSVLogger",
    "Callback",
    "CheckpointData",
    "CheckpointError",
    "EarlyStopping",
    "EpochSummary",
    "History",
    "JSONLinesLogger",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "NonFiniteLossWarning",
    "ProgressBar",
    "TerminateOnNaN",
    "Trainer",
    "accuracy",
    "confusion_matrix",
    "f1_score",
    "format_epoch_summary",
    "load_checkpoint",
    "load_model_weights",
    "metrics",
    "precision",
    "recall",
    "save_checkpoint",
    "top_k_accuracy",
]
