"""gradwise.sklearn.MLPClassifier against scikit-learn's own MLPClassifier: accuracy and fit time.

Same data, same split, same preprocessing (StandardScaler), same hyperparameters (scikit-learn's
names mean the same in both), each fit repeated with seeds 0..repeats-1, interleaved round by
round; the table gives the median fit time, their ratio and the mean test accuracy.

    python benchmarks/sklearn_mlp.py [--repeats 3] [--data digits|fashion] [--epochs 30]

digits: scikit-learn's 8x8 digits (1797 images, 64 features; 25% held out). fashion: a
10,000-image subset of Fashion-MNIST (784 features) if its files are installed.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
from _common import load_fashion_mnist, machine_description, setup_threads
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SklearnMLP
from sklearn.preprocessing import StandardScaler

from gradwise.sklearn import MLPClassifier as GradwiseMLP


def load(name: str) -> tuple[np.ndarray, ...]:
    if name == "digits":
        X, y = load_digits(return_X_y=True)
    else:
        images, labels, _ = load_fashion_mnist()
        X, y = images.reshape(len(images), -1)[:10_000], labels[:10_000]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", choices=("digits", "fashion"), default="digits")
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    setup_threads()
    print(machine_description())
    X_train, X_test, y_train, y_test = load(args.data)
    params = dict(hidden_layer_sizes=(128,), learning_rate_init=1e-3, batch_size=64,
                  max_iter=args.epochs, alpha=1e-4, n_iter_no_change=args.epochs + 1)
    print(f"data {args.data}: train {X_train.shape}, test {X_test.shape}; {params}")
    contenders = {"scikit-learn": SklearnMLP, "gradwise": GradwiseMLP}
    times: dict[str, list[float]] = {name: [] for name in contenders}
    accuracy: dict[str, list[float]] = {name: [] for name in contenders}
    for seed in range(args.repeats):
        for name, estimator in contenders.items():
            model = estimator(random_state=seed, **params)
            time.sleep(0.3)  # let the other contender's BLAS threads go idle
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X_train, y_train)
            times[name].append(time.perf_counter() - start)
            accuracy[name].append(model.score(X_test, y_test))
    print(f"\n{'estimator':<14}{'fit time (median)':>20}{'test accuracy (mean)':>24}")
    for name in contenders:
        print(f"{name:<14}{statistics.median(times[name]):>18.2f} s"
              f"{100 * np.mean(accuracy[name]):>22.2f} %")
    ratio = statistics.median(times["gradwise"]) / statistics.median(times["scikit-learn"])
    print(f"\ngradwise fit time / scikit-learn's: {ratio:.2f}x "
          f"({args.repeats} interleaved fits each, {args.epochs} epochs)")


if __name__ == "__main__":
    main()
