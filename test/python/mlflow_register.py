"""Registers an ONNX file the way a training job does with MLflow's own client: a run with params,
a metric, a dataset input and the git commit tag, the file logged as a run artifact, and a model
version pointing at it. Prints {"run_id", "version", "source"} as JSON. Credentials come from
MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD like any MLflow client.

usage: mlflow_register.py TRACKING_URI MODEL_NAME FILE.onnx
"""
import json
import os
import sys

import mlflow
import numpy as np
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

uri, name, onnx_path = sys.argv[1:4]
mlflow.set_tracking_uri(uri)
mlflow.set_experiment("fraud-training")
with mlflow.start_run(run_name="train-" + name) as run:
    mlflow.log_params({"learning_rate": "0.05", "trees": "200"})
    mlflow.log_metric("val_auc", 0.91)
    features = np.zeros((4, 8), dtype=np.float32)
    dataset = mlflow.data.from_numpy(features, source="s3://datasets/fraud/2026-11.npy", name="fraud-2026-11")
    mlflow.log_input(dataset, context="training")
    mlflow.set_tag("mlflow.source.git.commit", "0a1b2c3d4e5f")
    mlflow.log_artifact(onnx_path, artifact_path="model")
client = MlflowClient()
try:
    client.create_registered_model(name)
except MlflowException:
    pass  # already registered
source = run.info.artifact_uri + "/model/" + os.path.basename(onnx_path)
mv = client.create_model_version(name, source=source, run_id=run.info.run_id)
print(json.dumps({"run_id": run.info.run_id, "version": mv.version, "source": source}))
