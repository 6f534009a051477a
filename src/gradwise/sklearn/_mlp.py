"""MLPClassifier / MLPRegressor: scikit-learn estimators trained by gradwise.

Parameters follow scikit-learn's own ``sklearn.neural_network.MLPClassifier`` / ``MLPRegressor``
(1.9): the same names, defaults and order (``MLPRegressor``'s first positional parameter is
``loss``; everything after ``activation`` is keyword-only), so that code, pipelines and
``GridSearchCV`` grids written for them carry over. Only the solvers differ: no ``lbfgs`` (so
``max_fun``, its budget of loss evaluations, is accepted and validated but has nothing to limit);
``rmsprop`` and ``adamw`` in addition. Built on gradwise's public API: ``nn.Linear``,
the activations, ``optim`` and the functional losses.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
from scipy.special import xlogy
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

import gradwise as gw
from gradwise import nn
from gradwise.nn import functional as F

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "logistic": nn.Sigmoid, "identity": None}
SOLVERS = ("adam", "sgd", "rmsprop", "adamw")
LEARNING_RATES = ("constant", "invscaling", "adaptive")


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: the network, the loop, early stopping."""

    # the parameters in scikit-learn 1.9's order (tests compare with the installed signature)
    def __init__(
        self,
        hidden_layer_sizes: tuple[int, ...] = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 1e-4,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 1e-3,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: bool = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
        max_fun: int = 15000,
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.warm_start = warm_start
        self.max_fun = max_fun
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.verbose = verbose

    # ---- subclasses say what the output layer and the loss are ---------------------------------
    def _loss(self, output: gw.Tensor, target: np.ndarray) -> gw.Tensor:
        raise NotImplementedError

    def _validation_score(self, X: np.ndarray, target: np.ndarray) -> float:
        raise NotImplementedError

    # ---- parameters ---------------------------------------------------------------------------
    def _check_params(self) -> tuple[int, ...]:
        name = type(self).__name__
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, numbers.Integral) else tuple(sizes)
        if not all(isinstance(n, numbers.Integral) and n > 0 for n in sizes):
            raise ValueError(
                f"{name}: hidden_layer_sizes must be positive integers, "
                f"got {self.hidden_layer_sizes}"
            )
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"{name}: activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}"
            )
        if self.solver not in SOLVERS:
            raise ValueError(f"{name}: solver must be one of {SOLVERS}, got {self.solver!r}")
        if self.learning_rate not in LEARNING_RATES:
            raise ValueError(f"{name}: learning_rate must be one of {LEARNING_RATES}, "
                             f"got {self.learning_rate!r}")
        checks = [
            ("alpha", self.alpha, 0.0, None),
            ("learning_rate_init", self.learning_rate_init, 0.0, None),
            ("tol", self.tol, 0.0, None),
            ("momentum", self.momentum, 0.0, 1.0),
            ("validation_fraction", self.validation_fraction, 0.0, 1.0),
            ("beta_1", self.beta_1, 0.0, 1.0),
            ("beta_2", self.beta_2, 0.0, 1.0),
            ("epsilon", self.epsilon, 0.0, None),
            ("power_t", self.power_t, 0.0, None),
        ]
        for key, value, low, high in checks:
            if not isinstance(value, numbers.Real) or value < low or (high and value > high):
                bounds = f"in [{low}, {high}]" if high else f">= {low}"
                raise ValueError(f"{name}: {key} must be a number {bounds}, got {value!r}")
        if self.learning_rate_init <= 0:
            raise ValueError(
                f"{name}: learning_rate_init must be > 0, got {self.learning_rate_init}"
            )
        for key in ("max_iter", "n_iter_no_change", "max_fun"):
            value = getattr(self, key)
            if not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name}: {key} must be an integer >= 1, got {value!r}")
        batch = self.batch_size
        if batch != "auto" and not (isinstance(batch, numbers.Integral) and batch >= 1):
            raise ValueError(f"{name}: batch_size must be 'auto' or an integer >= 1, got {batch!r}")
        if self.early_stopping and not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(
                f"{name}: validation_fraction must be in (0, 1) with early_stopping, "
                f"got {self.validation_fraction}"
            )
        return sizes

    # ---- the network --------------------------------------------------------------------------
    def _initialize(self, n_features: int, n_outputs: int, dtype: np.dtype) -> None:
        sizes = self._check_params()
        seeds = np.random.SeedSequence(self._random_state.randint(np.iinfo(np.int32).max))
        rngs = iter(np.random.default_rng(s) for s in seeds.spawn(len(sizes) + 2))
        layers: list[nn.Module] = []
        width = n_features
        for size in sizes:
            layers.append(nn.Linear(width, size, rng=next(rngs), dtype=dtype))
            activation = ACTIVATIONS[self.activation]
            if activation is not None:
                layers.append(activation())
            width = size
        layers.append(nn.Linear(width, n_outputs, rng=next(rngs), dtype=dtype))
        self.model_ = nn.Sequential(*layers)
        self._shuffle_rng = next(rngs)
        self._new_optimizer()
        self.loss_curve_: list[float] = []
        self.validation_scores_: list[float] | None = [] if self.early_stopping else None
        self.best_loss_: float | None = None if self.early_stopping else np.inf
        self.best_validation_score_: float | None = -np.inf if self.early_stopping else None
        self.n_iter_ = 0
        self.t_ = 0
        self._no_improvement = 0
        self.dtype_ = np.dtype(dtype)

    def _new_optimizer(self) -> None:
        """A fresh optimizer over the model's parameters (every ``fit``, as scikit-learn does:
        ``warm_start`` keeps the weights, not the optimizer's state)."""
        params = list(self.model_.parameters())
        lr = float(self.learning_rate_init)
        self.optimizer_: gw.optim.Optimizer
        if self.solver == "sgd":
            self.optimizer_ = gw.optim.SGD(params, lr=lr, momentum=self.momentum,
                                           nesterov=self.nesterovs_momentum and self.momentum > 0)
        elif self.solver == "rmsprop":
            self.optimizer_ = gw.optim.RMSprop(params, lr=lr, eps=self.epsilon)
        else:
            optimizer = gw.optim.AdamW if self.solver == "adamw" else gw.optim.Adam
            self.optimizer_ = optimizer(params, lr=lr, betas=(self.beta_1, self.beta_2),
                                        eps=self.epsilon)

    def _warm(self) -> bool:
        """Whether ``fit`` continues from the current weights (``warm_start`` after a fit)."""
        return bool(self.warm_start) and hasattr(self, "model_")

    def _learning_rate_after_epoch(self) -> None:
        """scikit-learn's ``invscaling`` schedule (``SGDOptimizer.iteration_ends``): after each
        epoch lr = learning_rate_init / (t_ + 1) ** power_t, t_ the samples seen. Like
        scikit-learn, only the ``sgd`` solver follows ``learning_rate``."""
        if self.solver == "sgd" and self.learning_rate == "invscaling":
            lr = float(self.learning_rate_init) / (self.t_ + 1) ** float(self.power_t)
            for group in self.optimizer_.param_groups:
                group["lr"] = lr

    def _keep_going_after_plateau(self) -> bool:
        """scikit-learn's ``adaptive`` schedule (``SGDOptimizer.trigger_stopping``): on a
        plateau divide the learning rate by 5 and go on, until it is <= 1e-6; other schedules
        (and solvers) stop."""
        if self.solver != "sgd" or self.learning_rate != "adaptive":
            return False
        group = self.optimizer_.param_groups[0]
        if group["lr"] <= 1e-6:
            return False
        for group in self.optimizer_.param_groups:
            group["lr"] = group["lr"] / 5.0
        return True

    def _refuse_early_stopping(self, where: str) -> None:
        if self.early_stopping:
            raise ValueError(f"{where}: partial_fit does not support early_stopping=True "
                             "(as scikit-learn); use fit, or early_stopping=False")

    def _batch_size(self, n_samples: int) -> int:
        if self.batch_size == "auto":  # scikit-learn's rule
            return min(200, n_samples)
        return min(int(self.batch_size), n_samples)

    def _epoch(self, X: np.ndarray, target: np.ndarray) -> float:
        """One pass over (X, target) in mini-batches; the mean loss, L2 penalty included.

        The penalty is scikit-learn's: 0.5 * alpha * sum(W^2) / batch size, weights only
        (``sklearn.neural_network._multilayer_perceptron._backprop``).
        """
        n = len(X)
        order = self._shuffle_rng.permutation(n) if self.shuffle else np.arange(n)
        size = self._batch_size(n)
        weights = [p for name, p in self.model_.named_parameters() if name.endswith("weight")]
        self.model_.train()
        total = 0.0
        for start in range(0, n, size):
            rows = order[start : start + size]
            loss = self._loss(self.model_(gw.tensor(X[rows])), target[rows])
            if self.alpha > 0:
                loss = loss + F.l2_penalty(weights) * (0.5 * self.alpha / len(rows))
            self.optimizer_.zero_grad()
            loss.backward()
            self.optimizer_.step()
            total += loss.item() * len(rows)
        self.t_ += n
        return total / n

    def _train(self, X: np.ndarray, target: np.ndarray, epochs: int, incremental: bool) -> None:
        X_val: np.ndarray | None = None
        target_val: np.ndarray | None = None
        if self.early_stopping and not incremental:
            X, X_val, target, target_val = self._split(X, target)
        best_state = None
        for _ in range(epochs):
            loss = self._epoch(X, target)
            if not np.isfinite(loss):
                raise ValueError(
                    f"{type(self).__name__}: the training loss became {loss} at iteration "
                    f"{self.n_iter_ + 1}; lower learning_rate_init or scale the input"
                )
            self.n_iter_ += 1
            self.loss_curve_.append(loss)
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {loss:.8f}")
            # scikit-learn's stopping rule: no improvement by tol for n_iter_no_change epochs
            # (partial_fit counts too, for the adaptive learning rate, but never stops)
            if X_val is not None and target_val is not None:
                score = self._validation_score(X_val, target_val)
                best = self.best_validation_score_
                assert self.validation_scores_ is not None and best is not None  # early stopping
                self.validation_scores_.append(score)
                improved = score > best + self.tol
                if score > best:
                    self.best_validation_score_ = score
                    best_state = {k: v.clone() for k, v in self.model_.state_dict().items()}
            else:
                best_loss = self.best_loss_
                assert best_loss is not None  # no early stopping (partial_fit refuses it)
                improved = loss < best_loss - self.tol
                self.best_loss_ = min(best_loss, loss)
            self._no_improvement = 0 if improved else self._no_improvement + 1
            self._learning_rate_after_epoch()
            if self._no_improvement > self.n_iter_no_change:
                if self._keep_going_after_plateau():
                    self._no_improvement = 0
                elif not incremental:
                    break
        else:
            if not incremental:
                warnings.warn(
                    f"{type(self).__name__}: stochastic optimizer: maximum iterations "
                    f"({self.max_iter}) reached and the optimization hasn't converged yet.",
                    ConvergenceWarning,
                    stacklevel=3,
                )
        if best_state is not None:
            self.model_.load_state_dict(best_state)
        self.model_.eval()

    def _split(self, X: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, ...]:
        n_val = max(1, int(round(self.validation_fraction * len(X))))
        if n_val >= len(X):
            raise ValueError(
                f"{type(self).__name__}: {len(X)} samples are too few for early_stopping with "
                f"validation_fraction={self.validation_fraction}"
            )
        order = self._shuffle_rng.permutation(len(X))
        val, train = order[:n_val], order[n_val:]
        return X[train], X[val], target[train], target[val]

    def _forward(self, X: np.ndarray) -> np.ndarray:
        with gw.no_grad():
            return self.model_(gw.tensor(X.astype(self.dtype_, copy=False))).numpy()



class MLPClassifier(ClassifierMixin, _BaseMLP):
    """A multi-layer perceptron classifier trained with gradwise (softmax + cross-entropy).

    Args (scikit-learn's names and defaults):
        hidden_layer_sizes: widths of the hidden layers, e.g. ``(100,)`` or ``(64, 32)``.
        activation: "relu", "tanh", "logistic" (sigmoid) or "identity".
        solver: "adam" (default), "sgd" (with ``momentum``, ``nesterovs_momentum``), "rmsprop",
            "adamw".
        alpha: L2 penalty, 0.5 * alpha * ||W||^2 / batch size (weights, not biases).
        batch_size: rows per step; "auto" is min(200, n_samples).
        learning_rate: "constant", "invscaling" (after each epoch, learning_rate_init /
            (t_ + 1) ** power_t) or "adaptive" (divide by 5 on a plateau instead of stopping,
            until below 1e-6); as in scikit-learn, only the "sgd" solver follows it.
        learning_rate_init: the optimizer's (initial) learning rate.
        power_t: the exponent of "invscaling".
        max_iter: epochs (passes over the data) at most; ``partial_fit`` does one.
        tol, n_iter_no_change: stop when the training loss (or, with ``early_stopping``, the
            validation accuracy) has not improved by ``tol`` for ``n_iter_no_change`` epochs.
        early_stopping, validation_fraction: hold out that fraction to decide when to stop, and
            keep the weights of the best validation score.
        random_state: seed (int, RandomState or None) for the initial weights and the shuffles.
        warm_start: ``fit`` continues from the weights of the previous ``fit`` (same features
            and classes, else ValueError) with a fresh optimizer, as in scikit-learn.
        max_fun: accepted for scikit-learn compatibility and validated (an integer >= 1); it
            limits the ``lbfgs`` solver's loss evaluations, and gradwise has no ``lbfgs``.
        verbose: print the loss after every epoch.

    Attributes:
        classes_ (n_classes,), n_features_in_, feature_names_in_ (with a DataFrame), model_
        (the gradwise ``nn.Sequential``), optimizer_, loss_curve_, n_iter_, t_ (samples seen),
        best_loss_, validation_scores_, best_validation_score_.

    Shape:
        X: (n_samples, n_features) -> predict (n_samples,), predict_proba (n_samples, n_classes)

    Example:
        >>> from gradwise.sklearn import MLPClassifier
        >>> clf = MLPClassifier(hidden_layer_sizes=(32,), random_state=0).fit(X, y)
        >>> clf.predict_proba(X[:2])
    """

    classes_: np.ndarray  # set by fit / the first partial_fit (scikit-learn's attribute)

    def fit(self, X: Any, y: Any) -> MLPClassifier:
        """Train a new network (or, with ``warm_start``, the current one) on (X, y) for up to
        ``max_iter`` epochs; returns self."""
        warm = self._warm()
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32), reset=not warm)
        check_classification_targets(y)
        if warm:
            classes = np.unique(y)
            if not np.array_equal(classes, self.classes_):
                raise ValueError(
                    f"MLPClassifier.fit: warm_start needs y with the classes of the previous "
                    f"fit, {self.classes_}; y has {classes}"
                )
            X = X.astype(self.dtype_, copy=False)
            self._new_optimizer()
        else:
            self.classes_ = np.unique(y)
            self._random_state = check_random_state(self.random_state)
            self._initialize(X.shape[1], len(self.classes_), X.dtype)
        self._train(X, self._encode(y), self.max_iter, incremental=False)
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> MLPClassifier:
        """One epoch over (X, y); ``classes`` (every label) is required on the first call.

        Raises:
            ValueError: ``early_stopping=True`` (as scikit-learn: there is no held-out set to
                stop on), checked before anything changes.
        """
        self._refuse_early_stopping("MLPClassifier.partial_fit")
        first = not hasattr(self, "model_")
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32), reset=first)
        check_classification_targets(y)
        if first:
            if classes is None:
                raise ValueError(
                    "MLPClassifier.partial_fit: classes must be given on the first call "
                    "(every label that will ever be seen)"
                )
            self.classes_ = np.unique(np.asarray(classes))
            self._random_state = check_random_state(self.random_state)
            self._initialize(X.shape[1], len(self.classes_), X.dtype)
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(
                f"MLPClassifier.partial_fit: classes {np.unique(classes)} differ from the "
                f"first call's {self.classes_}"
            )
        self._train(X, self._encode(y), 1, incremental=True)
        return self

    def _encode(self, y: np.ndarray) -> np.ndarray:
        index = np.searchsorted(self.classes_, y)
        index = np.clip(index, 0, len(self.classes_) - 1)
        unseen = self.classes_[index] != y
        if np.any(unseen):
            raise ValueError(
                f"MLPClassifier: y holds labels {np.unique(y[unseen])} that are not in "
                f"classes_ {self.classes_}"
            )
        return index.astype(np.int64)

    def _loss(self, output: gw.Tensor, target: np.ndarray) -> gw.Tensor:
        return F.cross_entropy(output, target)

    def _validation_score(self, X: np.ndarray, target: np.ndarray) -> float:
        return float(np.mean(self._forward(X).argmax(axis=1) == target))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``: (n_samples, n_classes)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        logits = self._forward(X)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """log of ``predict_proba``, computed stably: (n_samples, n_classes)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        logits = self._forward(X)
        shifted = logits - logits.max(axis=1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable label of each row: (n_samples,), values from ``classes_``."""
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class MLPRegressor(RegressorMixin, _BaseMLP):
    """A multi-layer perceptron regressor trained with gradwise.

    Args:
        loss: "squared_error" (identity output, half the mean squared error) or "poisson"
            (exp output, half the Poisson deviance mean(y log(y / p) - y + p); y must be >= 0),
            both scikit-learn's (``sklearn.neural_network._base``). As in scikit-learn 1.9 it
            is the first positional parameter: ``MLPRegressor(hidden_layer_sizes=(64,))``.
        the rest: as :class:`MLPClassifier`; ``early_stopping`` watches the validation R^2.

    Shape:
        X: (n_samples, n_features); y: (n_samples,) or (n_samples, n_outputs) -> predict the
        same shape as y.
    """

    def __init__(
        self,
        loss: str = "squared_error",
        hidden_layer_sizes: tuple[int, ...] = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 1e-4,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 1e-3,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: bool = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int = 10,
        max_fun: int = 15000,
    ) -> None:
        super().__init__(
            hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
            learning_rate=learning_rate, learning_rate_init=learning_rate_init, power_t=power_t,
            max_iter=max_iter, shuffle=shuffle, random_state=random_state, tol=tol,
            verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun,
        )
        self.loss = loss

    def fit(self, X: Any, y: Any) -> MLPRegressor:
        """Train a new network (or, with ``warm_start``, the current one) on (X, y) for up to
        ``max_iter`` epochs; returns self."""
        warm = self._warm()
        X, y = self._validate(X, y, reset=not warm)
        if warm:
            if y.shape[1] != self.n_outputs_:
                raise ValueError(
                    f"MLPRegressor.fit: warm_start needs y with the {self.n_outputs_} outputs "
                    f"of the previous fit; y has {y.shape[1]}"
                )
            X, y = X.astype(self.dtype_, copy=False), y.astype(self.dtype_, copy=False)
            self._new_optimizer()
        else:
            self._random_state = check_random_state(self.random_state)
            self._initialize(X.shape[1], y.shape[1], X.dtype)
        self._train(X, y, self.max_iter, incremental=False)
        return self

    def partial_fit(self, X: Any, y: Any) -> MLPRegressor:
        """One epoch over (X, y), continuing from the current weights (a new network at first).

        Raises:
            ValueError: ``early_stopping=True`` (as scikit-learn), before anything changes.
        """
        self._refuse_early_stopping("MLPRegressor.partial_fit")
        first = not hasattr(self, "model_")
        X, y = self._validate(X, y, reset=first)
        if first:
            self._random_state = check_random_state(self.random_state)
            self._initialize(X.shape[1], y.shape[1], X.dtype)
        elif y.shape[1] != self.n_outputs_:
            raise ValueError(
                f"MLPRegressor.partial_fit: y has {y.shape[1]} outputs, the model predicts "
                f"{self.n_outputs_}"
            )
        self._train(X, y, 1, incremental=True)
        return self

    def _validate(self, X: Any, y: Any, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        if self.loss not in ("squared_error", "poisson"):
            raise ValueError(f"MLPRegressor: loss must be 'squared_error' or 'poisson', "
                             f"got {self.loss!r}")
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32), multi_output=True,
                             y_numeric=True, reset=reset)
        if self.loss == "poisson" and np.any(y < 0):
            raise ValueError("MLPRegressor: loss='poisson' needs y >= 0 (counts, rates); "
                             f"y has values down to {np.min(y)}")
        if reset:
            self._y_1d = y.ndim == 1
            self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        y = y.reshape(len(y), -1).astype(X.dtype, copy=False)
        return X, y

    def _loss(self, output: gw.Tensor, target: np.ndarray) -> gw.Tensor:
        if self.loss == "poisson":
            # half Poisson deviance with the log link (p = exp(output)), averaged over rows and
            # summed over outputs, as sklearn.neural_network._base.poisson_loss
            constant = float(np.mean(xlogy(target, target) - target, axis=0).sum())
            return (output.exp() - output * target).mean(dim=0).sum() + constant
        return F.mse_loss(output, target) * 0.5

    def _predict_values(self, X: np.ndarray) -> np.ndarray:
        out = self._forward(X)
        return np.exp(out) if self.loss == "poisson" else out

    def _validation_score(self, X: np.ndarray, target: np.ndarray) -> float:
        predicted = self._predict_values(X)
        residual = ((target - predicted) ** 2).sum()
        total = ((target - target.mean(axis=0)) ** 2).sum()
        return float(1.0 - residual / total) if total > 0 else 0.0

    def predict(self, X: Any) -> np.ndarray:
        """Predictions: (n_samples,) if trained on a 1-D y, else (n_samples, n_outputs)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        out = self._predict_values(X)
        return out.ravel() if self._y_1d else out

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
