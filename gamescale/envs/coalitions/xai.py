"""A feature-attribution game (XAI): players are the features of one explained instance.

A model is trained on a real tabular data set bundled with scikit-learn (no download).
The value of a feature subset S is the model's output on the instance with the features
outside S replaced by a baseline (the training mean), minus the output on the baseline:

    v(S) = f(x_S, b_{-S}) - f(b)            (target = prediction; v(empty) = 0)
    v(S) = loss(f(b), y) - loss(f(x_S, b_{-S}), y)   (target = loss: how much S lowers the loss)

The output f is the regression prediction, or the log-odds of the positive class for a
classifier. Each value is one model evaluation of one row, so a batch of coalitions is a
batch of model predictions: this is the game whose evaluation is worth spreading out.
"""

from __future__ import annotations

import numpy as np

from gamescale.envs.coalitions.game import CoalitionGame

DATASETS = {"diabetes": "regression", "breast_cancer": "classification"}
MODELS = ("gradient_boosting", "linear")


def load_dataset(name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(features `[rows, d]`, targets `[rows]`, feature names) of a scikit-learn bundled data set."""
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    try:
        from sklearn import datasets
    except ImportError:
        raise ValueError("the XAI game needs scikit-learn (pip install scikit-learn)") from None
    bunch = getattr(datasets, f"load_{name}")()
    return np.asarray(bunch.data, np.float64), np.asarray(bunch.target, np.float64), list(bunch.feature_names)


def train_model(dataset: str, model: str, seed: int):
    """A fitted scikit-learn estimator on the whole data set (deterministic for a seed)."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; known: {', '.join(MODELS)}")
    x, y, _ = load_dataset(dataset)
    kind = DATASETS[dataset]
    if kind == "regression":
        from sklearn.ensemble import GradientBoostingRegressor
        from sklearn.linear_model import Ridge

        est = (
            GradientBoostingRegressor(random_state=seed, n_estimators=100, max_depth=3)
            if model == "gradient_boosting"
            else Ridge(alpha=1.0)
        )
    else:
        from sklearn.ensemble import GradientBoostingClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if model == "gradient_boosting":
            est = GradientBoostingClassifier(random_state=seed, n_estimators=100, max_depth=3)
        else:
            est = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return est.fit(x, y)


class FeatureAttributionGame(CoalitionGame):
    """Features of instance `instance` of `dataset` as players of the game described above."""

    name = "xai_features"

    def __init__(
        self,
        dataset: str = "diabetes",
        model: str = "gradient_boosting",
        instance: int = 0,
        target: str = "prediction",
        seed: int = 0,
    ):
        x, y, names = load_dataset(dataset)
        if not 0 <= instance < len(x):
            raise ValueError(f"instance {instance} is outside the data set's {len(x)} rows")
        if target not in ("prediction", "loss"):
            raise ValueError(f"target must be prediction or loss, got {target!r}")
        self.num_players = x.shape[1]
        self.dataset, self.target, self.feature_names = dataset, target, names
        self.classification = DATASETS[dataset] == "classification"
        self.model = train_model(dataset, model, seed)
        self.instance = x[instance]
        self.label = float(y[instance])
        self.baseline = x.mean(axis=0)
        self._base_out = float(self._output(self.baseline[None, :])[0])
        self._base_loss = self._loss(np.array([self._base_out]))[0]

    def _output(self, rows: np.ndarray) -> np.ndarray:
        if self.classification:
            return np.asarray(self.model.decision_function(rows), np.float64)
        return np.asarray(self.model.predict(rows), np.float64)

    def _loss(self, out: np.ndarray) -> np.ndarray:
        if self.classification:  # logistic loss of the log-odds
            sign = 1.0 if self.label > 0 else -1.0
            return np.logaddexp(0.0, -sign * out)
        return (out - self.label) ** 2

    def _values(self, coalitions: np.ndarray) -> np.ndarray:
        rows = np.where(coalitions, self.instance[None, :], self.baseline[None, :])
        out = self._output(rows)
        if self.target == "prediction":
            return out - self._base_out
        return self._base_loss - self._loss(out)

    def describe(self) -> dict:
        return {**super().describe(), "dataset": self.dataset, "features": self.feature_names}
