"""gradwise.sklearn: scikit-learn's own estimator checks, and the tools users combine them with.

Skipped checks (reported by scikit-learn as skipped, not hidden here):
- check_array_api_input: runs only with SCIPY_ARRAY_API=1, and the estimators compute with
  NumPy arrays, so they do not claim array-API support (``array_api_support`` tag False).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits, make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from gradwise.sklearn import MLPClassifier, MLPRegressor


@parametrize_with_checks([MLPClassifier(), MLPRegressor()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X[:600], y[:600], test_size=0.25, random_state=0)


def test_classifier_learns_digits_in_a_pipeline(digits):
    X_train, X_test, y_train, y_test = digits
    model = make_pipeline(StandardScaler(), MLPClassifier((32,), learning_rate_init=1e-2,
                                                        max_iter=40, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X_train, y_train)
    assert model.score(X_test, y_test) > 0.9
    proba = model.predict_proba(X_test)
    assert proba.shape == (len(X_test), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(model.classes_, np.arange(10))
    np.testing.assert_allclose(np.exp(model.predict_log_proba(X_test)), proba, rtol=1e-6)
    assert model[-1].n_features_in_ == 64


def test_grid_search_and_cross_val_score():
    X, y = make_classification(n_samples=120, n_features=6, random_state=0)
    grid = GridSearchCV(
        MLPClassifier(max_iter=30, random_state=0),
        {"hidden_layer_sizes": [(4,), (16,)], "learning_rate_init": [1e-3, 1e-2]},
        cv=3,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        grid.fit(X, y)
        scores = cross_val_score(
            MLPClassifier((16,), learning_rate_init=1e-2, max_iter=30, random_state=0), X, y, cv=3
        )
    assert grid.best_params_["learning_rate_init"] == 1e-2  # 30 epochs are too few at 1e-3
    assert len(scores) == 3 and scores.mean() > 0.8


def test_string_labels_and_binary():
    X, y = make_classification(n_samples=80, n_features=4, random_state=1)
    labels = np.where(y == 1, "spam", "ham")
    clf = MLPClassifier((8,), learning_rate_init=1e-2, max_iter=100, random_state=0)
    clf.fit(X, labels)
    assert list(clf.classes_) == ["ham", "spam"]
    assert set(clf.predict(X)) <= {"ham", "spam"}
    assert clf.score(X, labels) > 0.85


def test_random_state_makes_fits_repeatable_and_seeds_differ():
    X, y = make_classification(n_samples=60, n_features=4, random_state=2)

    def proba(seed):
        clf = MLPClassifier((8,), max_iter=5, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return clf.fit(X, y).predict_proba(X)

    np.testing.assert_array_equal(proba(0), proba(0))
    assert not np.allclose(proba(0), proba(1))


def test_partial_fit_continues_and_needs_classes_first():
    X, y = make_classification(n_samples=100, n_features=5, random_state=3)
    clf = MLPClassifier((16,), learning_rate_init=1e-2, random_state=0)
    with pytest.raises(ValueError, match="classes must be given on the first call"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:50], y[:50], classes=[0, 1])
    for _ in range(30):
        clf.partial_fit(X, y)
    assert clf.n_iter_ == 31 and clf.t_ == 50 + 30 * 100
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    with pytest.raises(ValueError, match=r"not in classes_"):
        clf.partial_fit(X[:3], [0, 1, 7])
    with pytest.raises(ValueError, match="X has 4 features"):
        clf.partial_fit(X[:, :4], y)


@pytest.mark.parametrize("make", [
    lambda X, y: (MLPClassifier((4,), early_stopping=True, random_state=0), {"classes": [0, 1]}),
    lambda X, y: (MLPRegressor((4,), early_stopping=True, random_state=0), {}),
])
def test_partial_fit_refuses_early_stopping_as_scikit_learn_does(make):
    # it used to crash mid-epoch with a TypeError (None - float) after changing the model
    X, y = make_classification(n_samples=40, n_features=3, n_informative=2, n_redundant=0,
                               random_state=0)
    estimator, extra = make(X, y)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping=True"):
        estimator.partial_fit(X, y, **extra)
    assert not hasattr(estimator, "model_")


def test_stops_when_the_loss_stops_improving_and_warns_otherwise():
    X, y = make_classification(n_samples=60, n_features=4, random_state=4)
    clf = MLPClassifier((8,), learning_rate_init=0.05, tol=1e-1, n_iter_no_change=2,
                        max_iter=500, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf.fit(X, y)
    assert clf.n_iter_ < 500
    with pytest.warns(ConvergenceWarning, match=r"maximum iterations \(2\)"):
        MLPClassifier((8,), max_iter=2, random_state=0).fit(X, y)


def test_early_stopping_keeps_the_best_validation_weights():
    X, y = make_classification(n_samples=200, n_features=8, random_state=5)
    clf = MLPClassifier((32,), early_stopping=True, validation_fraction=0.2, n_iter_no_change=3,
                        learning_rate_init=1e-2, max_iter=300, random_state=0).fit(X, y)
    assert len(clf.validation_scores_) == clf.n_iter_ < 300
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.best_loss_ is None


def test_solvers_activations_and_alpha():
    X, y = make_classification(n_samples=100, n_features=5, random_state=6)
    for solver in ("adam", "sgd", "rmsprop", "adamw"):
        for activation in ("relu", "tanh", "logistic", "identity"):
            clf = MLPClassifier((8,), solver=solver, activation=activation,
                                learning_rate_init=1e-2, max_iter=60, random_state=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                clf.fit(X, y)
            assert clf.score(X, y) > 0.75, (solver, activation)
    big = MLPClassifier((8,), alpha=10.0, max_iter=60, learning_rate_init=1e-2, random_state=0)
    small = MLPClassifier((8,), alpha=0.0, max_iter=60, learning_rate_init=1e-2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        norms = [np.linalg.norm(m.fit(X, y).model_[0].weight.numpy()) for m in (big, small)]
    assert norms[0] < 0.5 * norms[1]  # the L2 penalty shrinks the weights


@pytest.mark.parametrize(
    "params, message",
    [
        ({"hidden_layer_sizes": (0,)}, "hidden_layer_sizes must be positive integers"),
        ({"activation": "swish"}, "activation must be one of"),
        ({"solver": "lbfgs"}, "solver must be one of"),
        ({"learning_rate_init": 0.0}, "learning_rate_init must be > 0"),
        ({"batch_size": 0}, "batch_size must be 'auto' or an integer"),
        ({"max_iter": 0}, "max_iter must be an integer >= 1"),
        ({"momentum": 1.5}, r"momentum must be a number in \[0.0, 1.0\]"),
        ({"early_stopping": True, "validation_fraction": 0.0}, "validation_fraction must be"),
        ({"learning_rate": "optimal"}, "learning_rate must be one of"),
        ({"power_t": -1.0}, "power_t must be a number >= 0"),
        ({"max_fun": 0}, "max_fun must be an integer >= 1"),
    ],
)
def test_bad_parameters_are_named_at_fit(params, message):
    X, y = make_classification(n_samples=20, n_features=3, n_informative=2, n_redundant=0,
                               random_state=0)
    with pytest.raises(ValueError, match=message):
        MLPClassifier(**params).fit(X, y)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid:RuntimeWarning")
def test_diverging_training_raises_instead_of_predicting_nan():
    X, y = make_regression(n_samples=50, n_features=3, random_state=0)
    with pytest.raises(ValueError, match="training loss became"):
        MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=10.0, max_iter=50,
                     random_state=0).fit(X * 1e3, y * 1e3)


def test_regressor_single_and_multi_output():
    X, y = make_regression(n_samples=150, n_features=4, n_targets=2, noise=0.1, random_state=0)
    scale = y.std(axis=0)
    reg = make_pipeline(StandardScaler(),
                        MLPRegressor(hidden_layer_sizes=(32,), learning_rate_init=1e-2,
                                     max_iter=300, random_state=0))
    reg.fit(X, y / scale)
    assert reg.predict(X).shape == (150, 2)
    assert reg.score(X, y / scale) > 0.95
    reg.fit(X, y[:, 0] / scale[0])
    assert reg.predict(X).shape == (150,)
    assert reg.score(X, y[:, 0] / scale[0]) > 0.95


def test_unfitted_estimators_say_so():
    with pytest.raises(NotFittedError):
        MLPClassifier().predict(np.ones((2, 2)))
    with pytest.raises(NotFittedError):
        MLPRegressor().predict(np.ones((2, 2)))


def test_float32_input_trains_in_float32():
    X, y = make_classification(n_samples=40, n_features=4, random_state=7)
    clf = MLPClassifier((4,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X.astype(np.float32), y)
    assert clf.model_[0].weight.numpy().dtype == np.float32
    assert clf.predict_proba(X).dtype == np.float32


@pytest.mark.parametrize("ours, theirs", [("MLPClassifier", "MLPClassifier"),
                                          ("MLPRegressor", "MLPRegressor")])
def test_parameters_match_the_installed_scikit_learn(ours, theirs):
    """Regression: MLPRegressor's first positional parameter was hidden_layer_sizes where
    scikit-learn's (1.7+) is loss, and learning_rate, power_t, warm_start, max_fun were missing:
    same names, order, kinds (positional or keyword-only) and defaults as the installed one."""
    import inspect

    import sklearn.neural_network

    import gradwise.sklearn

    def described(cls):
        return [(p.name, p.kind, p.default)
                for p in inspect.signature(cls).parameters.values()]

    assert described(getattr(gradwise.sklearn, ours)) == described(
        getattr(sklearn.neural_network, theirs))


def test_positional_arguments_mean_what_they_mean_in_scikit_learn():
    from sklearn.neural_network import MLPRegressor as SkRegressor

    assert MLPRegressor("poisson", (8,), "tanh").get_params() == {
        **MLPRegressor().get_params(), "loss": "poisson", "hidden_layer_sizes": (8,),
        "activation": "tanh"}
    assert SkRegressor("poisson", (8,), "tanh").get_params()["hidden_layer_sizes"] == (8,)
    with pytest.raises(TypeError):
        MLPClassifier((8,), "relu", "sgd")  # solver is keyword-only, as in scikit-learn


def test_invscaling_and_adaptive_learning_rates_follow_scikit_learn():
    X, y = make_classification(n_samples=60, n_features=4, random_state=0)
    clf = MLPClassifier((8,), solver="sgd", learning_rate="invscaling", power_t=0.25,
                        learning_rate_init=0.1, max_iter=4, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    assert clf.t_ == 4 * 60
    assert clf.optimizer_.param_groups[0]["lr"] == pytest.approx(0.1 / (4 * 60 + 1) ** 0.25)
    # adam ignores learning_rate, as scikit-learn's does
    adam = MLPClassifier((8,), learning_rate="invscaling", max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        adam.fit(X, y)
    assert adam.optimizer_.param_groups[0]["lr"] == 1e-3
    # adaptive: a plateau (tol too large to ever improve) divides the rate by 5 instead of
    # stopping, until it is <= 1e-6: 0.1 -> ... -> 0.1 / 5**8 = 2.56e-7, so 8 divisions
    stuck = MLPClassifier((8,), solver="sgd", learning_rate="adaptive", learning_rate_init=0.1,
                          tol=1e3, n_iter_no_change=1, max_iter=200, random_state=0).fit(X, y)
    assert stuck.optimizer_.param_groups[0]["lr"] == pytest.approx(0.1 / 5**8)
    constant = MLPClassifier((8,), solver="sgd", learning_rate_init=0.1, tol=1e3,
                             n_iter_no_change=1, max_iter=200, random_state=0).fit(X, y)
    assert constant.n_iter_ == 3 and stuck.n_iter_ > constant.n_iter_


def test_warm_start_continues_from_the_previous_fit():
    X, y = make_classification(n_samples=80, n_features=4, random_state=0)
    kwargs = dict(hidden_layer_sizes=(8,), learning_rate_init=1e-2, max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warm = MLPClassifier(warm_start=True, **kwargs).fit(X, y)
        weights = warm.model_[0].weight.numpy().copy()
        warm.fit(X, y)
        cold = MLPClassifier(**kwargs).fit(X, y)
        first = cold.model_[0].weight.numpy().copy()
        cold.fit(X, y)
    assert warm.n_iter_ == 10 and len(warm.loss_curve_) == 10
    assert not np.array_equal(warm.model_[0].weight.numpy(), weights)
    np.testing.assert_array_equal(weights, first)  # the same first fit
    assert cold.n_iter_ == 5 and warm.loss_curve_[5] < cold.loss_curve_[0]
    with pytest.raises(ValueError, match="warm_start needs y with the classes"):
        warm.fit(X, np.where(y == 1, 2, y))
    with pytest.raises(ValueError, match="features"):
        warm.fit(X[:, :3], y)
    reg = MLPRegressor(hidden_layer_sizes=(4,), warm_start=True, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, y.astype(float))
        reg.fit(X, y.astype(float))
    assert reg.n_iter_ == 4
    with pytest.raises(ValueError, match="warm_start needs y with the 1 outputs"):
        reg.fit(X, np.stack([y, y], axis=1).astype(float))


def test_poisson_loss_is_scikit_learns_half_deviance():
    from sklearn.neural_network._base import poisson_loss

    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 3))
    y = rng.poisson(np.exp(0.5 * X[:, 0] + 0.2)).astype(float)
    reg = MLPRegressor("poisson", (6,), alpha=0.0, batch_size=50, learning_rate_init=1e-12,
                       max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, y)
    predicted = reg.predict(X)
    assert np.all(predicted > 0)
    assert reg.loss_curve_[0] == pytest.approx(poisson_loss(y[:, None], predicted[:, None]),
                                               rel=1e-9)
    # held-out mean Poisson deviance, against scikit-learn's own MLPRegressor("poisson") with
    # the same settings and the constant model (when written: 1.23, 1.41, true rate 1.10,
    # constant 2.11)
    from sklearn.metrics import mean_poisson_deviance
    from sklearn.neural_network import MLPRegressor as SkRegressor

    rng = np.random.default_rng(1)
    X, X_test = rng.standard_normal((200, 3)), rng.standard_normal((200, 3))
    y = rng.poisson(np.exp(0.8 * X[:, 0] + 0.2)).astype(float)
    y_test = rng.poisson(np.exp(0.8 * X_test[:, 0] + 0.2)).astype(float)
    deviances = []
    for estimator in (MLPRegressor, SkRegressor):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fitted = estimator("poisson", (16,), learning_rate_init=1e-2, max_iter=200,
                               random_state=0).fit(X, y)
        deviances.append(mean_poisson_deviance(y_test, fitted.predict(X_test)))
    truth = mean_poisson_deviance(y_test, np.exp(0.8 * X_test[:, 0] + 0.2))
    constant = mean_poisson_deviance(y_test, np.full_like(y_test, y.mean()))
    assert truth < deviances[0] < 1.1 * deviances[1] and deviances[0] < 0.8 * constant
    with pytest.raises(ValueError, match="poisson' needs y >= 0"):
        MLPRegressor("poisson").fit(X, y - 5)
    with pytest.raises(ValueError, match="loss must be 'squared_error' or 'poisson'"):
        MLPRegressor("absolute_error").fit(X, y)
