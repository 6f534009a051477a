"""scikit-learn estimators trained by gradwise: ``MLPClassifier`` and ``MLPRegressor``.

They follow scikit-learn's estimator API (``fit``, ``partial_fit``, ``predict``,
``predict_proba``, ``score``, ``get_params``/``set_params``) and its parameter names, pass
``sklearn.utils.estimator_checks.parametrize_with_checks``, and work in ``Pipeline``,
``GridSearchCV`` and ``cross_val_score``.

Example:
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from gradwise.sklearn import MLPClassifier
    >>> clf = make_pipeline(StandardScaler(), MLPClassifier((64,), random_state=0))
    >>> clf.fit(X_train, y_train).score(X_test, y_test)
"""

from gradwise.sklearn._mlp import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
