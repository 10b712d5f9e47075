"""Reference values for the offline evaluation metrics, computed by scikit-learn, and NumPy-written
dataset files for the loaders; written to test/fixtures/evaluation/. The outputs are committed, so
the TypeScript tests never need Python.

Run: ~/.cache/runway/py/bin/python test/python/evaluation_reference.py  (scikit-learn comes with mlflow)
"""

import json
import os

import numpy as np
from sklearn import metrics

OUT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "evaluation")
rng = np.random.default_rng(7)


def r(x):
    return [round(float(v), 6) for v in x]


# binary: noisy scores with ties
n = 300
y = rng.integers(0, 2, n)
s = np.clip(0.35 * y + rng.normal(0.35, 0.2, n), 0, 1).round(2)
pred = (s >= 0.5).astype(int)
binary = {
    "labels": y.tolist(),
    "scores": r(s),
    "threshold": 0.5,
    "accuracy": metrics.accuracy_score(y, pred),
    "auc": metrics.roc_auc_score(y, s),
    "precision": metrics.precision_score(y, pred, zero_division=0),
    "recall": metrics.recall_score(y, pred),
    "f1": metrics.f1_score(y, pred),
    "logloss": metrics.log_loss(y, np.clip(s, 1e-15, 1 - 1e-15)),
}

# multiclass: 4 classes, softmax scores
c = 4
ym = rng.integers(0, c, n)
logits = rng.normal(0, 1, (n, c))
logits[np.arange(n), ym] += 1.2
p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
p = p.round(6)
multiclass = {
    "labels": ym.tolist(),
    "scores": [r(row) for row in p],
    "top1": metrics.accuracy_score(ym, p.argmax(1)),
    "top2": metrics.top_k_accuracy_score(ym, p, k=2, labels=list(range(c))),
    "macro_f1": metrics.f1_score(ym, p.argmax(1), average="macro"),
}

# regression
yr = rng.normal(10, 3, n).round(4)
pr = (yr + rng.normal(0, 1.1, n)).round(4)
regression = {
    "labels": r(yr),
    "predictions": r(pr),
    "rmse": float(np.sqrt(metrics.mean_squared_error(yr, pr))),
    "mae": metrics.mean_absolute_error(yr, pr),
    "r2": metrics.r2_score(yr, pr),
}

with open(os.path.join(OUT, "reference.json"), "w") as f:
    json.dump({"binary": binary, "multiclass": multiclass, "regression": regression}, f)
    f.write("\n")

# dataset files as NumPy writes them: 6 rows of 8 features, labels, a slice column
X = rng.normal(0, 1, (6, 8)).astype(np.float32)
labels = np.array([0, 1, 1, 0, 1, 0], dtype=np.int64)
country = np.array(["de", "fr", "de", "fr", "de", "fr"])
np.savez(os.path.join(OUT, "small.npz"), features=X, labels=labels, country=country)
np.save(os.path.join(OUT, "small-features.npy"), X.astype(np.float64))
np.save(os.path.join(OUT, "small-labels.npy"), labels.astype(np.int32))
with open(os.path.join(OUT, "small-values.json"), "w") as f:
    json.dump({"features": X.astype(float).tolist(), "labels": labels.tolist(), "country": country.tolist()}, f)
    f.write("\n")
