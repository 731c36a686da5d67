"""``DominoJobLink``: the "Domino job" button on a task, reading the ``job_url`` XCom.

Operators push ``job_id`` and ``job_url`` to XCom right after the job starts (before waiting), so
the link works while the job is still running.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperatorLink

__all__ = ["JOB_ID_KEY", "JOB_URL_KEY", "DominoJobLink"]

JOB_ID_KEY = "job_id"
JOB_URL_KEY = "job_url"


class DominoJobLink(BaseOperatorLink):
    """Link to the Domino job page of this task instance."""

    name = "Domino job"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        url = XCom.get_value(ti_key=ti_key, key=JOB_URL_KEY)
        return str(url) if url else ""
