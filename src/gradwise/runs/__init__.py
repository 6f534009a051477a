"""Training runs on disk: train, resume, evaluate and predict from a run folder.

A run folder holds everything needed to understand and reuse a training run::

    runs/mnist-mlp-20240101-120000/
      config.json            the exact TrainConfig used (usable again with --config); its
                             dataset is the one asked for
      run.json               what happened: data set actually used (with dataset_requested when
                             it differs: MNIST missing offline -> digits), input scaling, status
      metrics.jsonl          one JSON object per epoch (losses, accuracies, lr, time)
      history.json           the full History
      weights.safetensors    the final weights (no pickle)
      learning_curves.png    loss and accuracy per epoch
      report.html            the doctor's findings, curves and test results (with gradwise.viz)
      checkpoints/last/      checkpoint after the latest epoch (or the interrupt): resume from it
      checkpoints/best/      checkpoint of the best validation accuracy

The package is split by task: :mod:`~gradwise.runs.layout` (file names, creating and reading the
folder), :mod:`~gradwise.runs.training` (:func:`train_run`), :mod:`~gradwise.runs.evaluate`
(:func:`load_run`, :func:`evaluate_run`, :func:`predict_images`) and
:mod:`~gradwise.runs.lr_find` (:func:`find_learning_rate`). Nothing here prints: messages for
people go through the ``notify`` function a caller passes (the CLI prints them).

Example:
    >>> config = TrainConfig.from_recipe("spiral")                 # doctest: +SKIP
    >>> outcome = train_run(config, "runs/spiral-demo")            # doctest: +SKIP
    >>> evaluate_run("runs/spiral-demo").accuracy                  # doctest: +SKIP
"""

from gradwise.runs.evaluate import (
    WEIGHT_CHOICES,
    Evaluation,
    LoadedRun,
    Prediction,
    evaluate_run,
    load_run,
    predict_images,
)
from gradwise.runs.layout import (
    BEST_CHECKPOINT,
    CONFIG_NAME,
    CURVES_NAME,
    HISTORY_NAME,
    LAST_CHECKPOINT,
    METRICS_NAME,
    REPORT_NAME,
    RUN_INFO_NAME,
    WEIGHTS_NAME,
    RunError,
    default_run_dir,
    read_config,
    run_status,
)
from gradwise.runs.lr_find import find_learning_rate
from gradwise.runs.training import StopRequest, TrainOutcome, train_run

__all__ = [
    "BEST_CHECKPOINT",
    "CONFIG_NAME",
    "CURVES_NAME",
    "HISTORY_NAME",
    "LAST_CHECKPOINT",
    "METRICS_NAME",
    "REPORT_NAME",
    "RUN_INFO_NAME",
    "WEIGHTS_NAME",
    "WEIGHT_CHOICES",
    "Evaluation",
    "LoadedRun",
    "Prediction",
    "RunError",
    "StopRequest",
    "TrainOutcome",
    "default_run_dir",
    "evaluate_run",
    "find_learning_rate",
    "load_run",
    "predict_images",
    "read_config",
    "run_status",
    "train_run",
]
