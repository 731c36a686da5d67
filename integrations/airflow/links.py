"""``DominoJobLink``: the "Domino job" button on a task, reading the ``job_url`` XCom.

Operators and the sensor push ``job_id``, ``job_url`` and the link's own XCom right after the job
starts (before waiting), so the link works while the job is still running: Airflow writes a link's
XCom (``_link_DominoJobLink``, which the API server reads) only when the task ends or defers.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperatorLink

__all__ = ["JOB_ID_KEY", "JOB_URL_KEY", "DominoJobLink", "push_job_xcoms"]

JOB_ID_KEY = "job_id"
JOB_URL_KEY = "job_url"


class DominoJobLink(BaseOperatorLink):
    """Link to the Domino job page of this task instance."""

    name = "Domino job"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        """The Domino job page of this task instance, from the ``job_url`` it pushed to XCom (or empty)."""
        from airflow.sdk.execution_time.xcom import XCom

        url = XCom.get_value(ti_key=ti_key, key=JOB_URL_KEY)
        return str(url) if url else ""


def push_job_xcoms(ti: Any, job_id: str, url: str | None) -> None:
    """``job_id``, ``job_url`` and the "Domino job" link, visible at once in the UI and API."""
    ti.xcom_push(key=JOB_ID_KEY, value=job_id)
    ti.xcom_push(key=JOB_URL_KEY, value=url)
    if url:
        ti.xcom_push(key=DominoJobLink().xcom_key, value=url)
