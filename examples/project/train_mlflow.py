"""A Domino job that logs into the MLflow run its orchestrator opened for it.

Start it from any orchestrator with MLflow on (``DOMINO_ORCHESTRATE_MLFLOW_TRACKING_URI``, or
Domino's own ``MLFLOW_TRACKING_URI`` with ``DOMINO_ORCHESTRATE_MLFLOW=1``), e.g.
``DominoJobOperator(task_id="train", command="python train_mlflow.py 3")``. The command stays
exactly as written: the job finds its run from ``DOMINO_RUN_ID``, which Domino sets in every job.
The orchestrator closes the same run with the job's status, Domino's times and ``stdout.txt``.
"""

import sys

import mlflow

from domino_orchestrate.injob import mlflow_run

epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
with mlflow_run() as run:  # the run tagged domino.job_id = $DOMINO_RUN_ID
    print(f"logging into MLflow run {run.info.run_id}", flush=True)
    mlflow.log_param("epochs", epochs)
    for epoch in range(1, epochs + 1):
        loss = 1.0 / epoch
        mlflow.log_metric("loss", loss, step=epoch)
        print(f"epoch {epoch}/{epochs}: loss={loss:.3f}", flush=True)
print("model saved to results/model.pkl")
