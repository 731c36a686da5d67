"""domino-orchestrate: run Domino Data Lab jobs from Airflow, Prefect and Dagster.

Subpackages: ``core`` (client, polling, log streaming, lineage), ``airflow``, ``prefect``,
``dagster`` (thin integrations) and ``sandbox`` (a local Domino-compatible server).
"""

__version__ = "0.1.0"
