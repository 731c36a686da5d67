"""``DominoJobTrigger``: follow a Domino job from the triggerer, streaming its stdout.

It runs the core ``AsyncDominoClient`` wait (status polling, stdout streaming, retries) and yields
exactly one ``TriggerEvent``::

    {"status": "success" | "failed" | "timeout" | "error",
     "snapshot": JobSnapshot.summary() or None, "message": str, "tail": [last stdout lines]}

Cancellation policy (documented choice): when the trigger is *cancelled* — the triggerer
restarts, shuts down or hands the trigger to another triggerer — the Domino job is left running;
the trigger resumes following it wherever it is re-created. The job is stopped only when a user
kills the task (``on_kill`` below, called by Airflow >= 3.3 on mark-failed/clear/mark-success),
when the operator's execution timeout expires (``max_poll_time`` inside the trigger, and the
operator's ``resume_execution`` for the deferral timeout), or by the operator's ``on_kill``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

__all__ = ["DominoJobTrigger"]


class DominoJobTrigger(BaseTrigger):
    """Wait for a Domino job (v4 job or v1 run) to end.

    :param conn_id: the ``domino`` connection id.
    :param handle: ``JobHandle.to_dict()`` of the job to follow.
    :param poll_options: ``PollOptions.to_dict()``.
    :param lineage: ``lineage_to_dict(LineageInfo)`` or None; drives lineage observers.
    :param project: ``owner/name`` overriding the connection's project.
    """

    def __init__(
        self,
        conn_id: str,
        handle: dict[str, Any],
        poll_options: dict[str, Any] | None = None,
        lineage: dict[str, Any] | None = None,
        project: str | None = None,
    ) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.handle = dict(handle)
        self.poll_options = dict(poll_options or {})
        self.lineage = dict(lineage) if lineage else None
        self.project = project

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "conn_id": self.conn_id,
                "handle": dict(self.handle),
                "poll_options": dict(self.poll_options),
                "lineage": dict(self.lineage) if self.lineage else None,
                "project": self.project,
            },
        )

    async def _client(self) -> Any:
        from .hooks import DominoHook

        hook = DominoHook(self.conn_id, project=self.project or self.handle.get("project"))
        return hook.async_client(await hook.aget_config())

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from domino_orchestrate.core import (
            DominoError,
            JobFailedError,
            JobHandle,
            PollOptions,
            PollTimeoutError,
        )
        from domino_orchestrate.core.lineage import lineage_observers

        from ._lineage import lineage_from_dict

        handle = JobHandle.from_dict(self.handle)
        options = PollOptions.from_dict(self.poll_options)
        event: dict[str, Any]
        client = await self._client()
        try:
            observers = (
                lineage_observers(lineage_from_dict(self.lineage), client.config)
                if self.lineage else []
            )

            def on_line(line: Any) -> None:
                if line.stream == "stderr":
                    self.log.warning("%s", line.text)
                else:
                    self.log.info("%s", line.text)

            try:
                # A cancelled trigger (a triggerer restart) must leave the job running; a user's
                # kill reaches ``on_kill`` instead. See the module docstring.
                snap = await client.wait(
                    handle, replace(options, stop_on_interrupt=False), on_line=on_line,
                    observers=observers,
                )
            except JobFailedError as exc:
                event = {"status": "failed", "snapshot": exc.snapshot.summary(),
                         "message": str(exc), "tail": list(exc.stdout_tail)}
            except PollTimeoutError as exc:
                event = {"status": "timeout", "snapshot": None, "message": str(exc), "tail": []}
            except DominoError as exc:
                event = {"status": "error", "snapshot": None,
                         "message": f"{type(exc).__name__}: {exc}", "tail": []}
            else:
                event = {"status": "success", "snapshot": snap.summary(),
                         "message": f"Domino {handle.kind} {handle.job_id} succeeded", "tail": []}
        finally:
            await client.aclose()
        yield TriggerEvent(event)

    async def on_kill(self) -> None:
        """A user killed the deferred task: stop the Domino job (bounded wait)."""
        from domino_orchestrate.core import JobHandle, PollOptions

        handle = JobHandle.from_dict(self.handle)
        options = PollOptions.from_dict(self.poll_options)
        client = await self._client()
        try:
            self.log.warning("Task killed: stopping Domino job %s", handle.job_id)
            await asyncio.wait_for(
                client.stop_job(handle, wait=True, timeout=options.stop_timeout),
                timeout=options.stop_timeout + 5,
            )
        finally:
            await client.aclose()
