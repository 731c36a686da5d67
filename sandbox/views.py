"""JSON shapes of the Domino API, built from the sandbox's records.

What lives here: one function per response shape of domino-api.md §2 (v1 Run, v4 Job, hardware
tiers, environments, ...). Field names are exact; do not rename them. Each function snapshots an
execution under the store lock so a response never mixes two states (e.g. a terminal status
without its outputCommitId).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from .state import ENVIRONMENTS, HARDWARE_TIERS, Execution, ExecutionStore, HardwareTier, Project

VERSION = {
    "version": "5.10.0",  # domino-api.md §1.5: the official client asserts >= 4.1.0
    "buildId": "sandbox-1",
    "buildUrl": "https://example.invalid/domino-orchestrate/sandbox/builds/1",
    "commitId": "0123456789abcdef0123456789abcdef01234567",
    "commitUrl": "https://example.invalid/domino-orchestrate/sandbox/commit/0123456",
    "timestamp": "2024-01-01T00:00:00Z",
}


def iso(ms: int | None) -> str | None:
    """v1 timestamps are ISO-8601 strings (UTC, millisecond precision)."""
    if ms is None:
        return None
    stamp = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def run_json(store: ExecutionStore, ex: Execution) -> dict[str, Any]:
    """The v1 Run object (domino-api.md §2.2 field table)."""
    with store.lock:
        failed = ex.status in ("Failed", "Error")
        return {
            "id": ex.id,
            "projectId": ex.project.id,
            "number": ex.number,
            "startingUserId": store.user_id,
            "queued": iso(ex.queued_ms),
            "started": iso(ex.started_ms),
            "completed": iso(ex.completed_ms),
            "status": ex.status,
            "commitId": ex.input_commit_id,
            "executor": "sandbox-executor-0" if ex.started_ms is not None else None,
            "outputCommitId": ex.output_commit_id,
            "title": ex.title,
            "isArchived": False,
            "postProcessedTimestamp": iso(ex.completed_ms),
            "diagnosticStatistics": ({"isError": failed, "data": []} if ex.is_completed else None),
            "isCompleted": ex.is_completed,
            "hardwareTierId": ex.hardware_tier.id,
        }


def job_json(store: ExecutionStore, ex: Execution) -> dict[str, Any]:
    """The v4 Job object (domino-api.md §2.3); stageTime values are epoch milliseconds."""
    with store.lock:
        return {
            "id": ex.id,
            "number": ex.number,
            "projectId": ex.project.id,
            "title": ex.title,
            "jobRunCommand": ex.command_display,
            "statuses": {
                "isCompleted": ex.is_completed,
                "isArchived": False,
                "isScheduled": False,
                "executionStatus": ex.status,
            },
            "queuedJobHistoryDetails": {
                "expectedWait": "< 1 minute",
                "explanation": "Resources are available",
                "helpText": None,
            },
            "stageTime": {
                "submissionTime": ex.queued_ms,
                "runStartTime": ex.started_ms,
                "completedTime": ex.completed_ms,
            },
            "startedBy": {"id": store.user_id, "username": store.username},
            "commitDetails": {
                "inputCommitId": ex.input_commit_id,
                "outputCommitId": ex.output_commit_id,
            },
            "hardwareTier": {"id": ex.hardware_tier.id, "name": ex.hardware_tier.name},
            "environment": {
                "environmentId": ex.environment_id,
                "environmentName": dict(ENVIRONMENTS).get(ex.environment_id),
            },
            "runFailureReason": _failure_reason(ex.status),
            "runFailureMessage": ex.failure_message if ex.status in ("Failed", "Error") else None,
        }


def _failure_reason(status: str) -> str | None:
    return {"Failed": "NonZeroExitCode", "Error": "ExecutionError"}.get(status)


def runtime_details_json(store: ExecutionStore, ex: Execution) -> dict[str, Any]:
    """``GET /v4/jobs/{jobId}/runtimeExecutionDetails``: the execution's hardware tier and
    environment."""
    with store.lock:
        tier = ex.hardware_tier
        return {
            "hardwareTier": {"id": tier.id, "name": tier.name},
            "environment": {
                "environmentId": ex.environment_id,
                "environmentName": dict(ENVIRONMENTS).get(ex.environment_id),
            },
            "executionId": ex.id,
            "status": ex.status,
        }


def tier_json(tier: HardwareTier) -> dict[str, Any]:
    """One entry of ``GET /v4/projects/{projectId}/hardwareTiers``."""
    return {
        "hardwareTier": {
            "id": tier.id,
            "name": tier.name,
            "hwtFlags": {"isDefault": tier.is_default, "isVisible": True, "isArchived": False},
            "hwtResources": {"cores": tier.cores, "memory": {"value": tier.memory_gib}},
        }
    }


def tiers_json() -> list[dict[str, Any]]:
    """``GET /v4/projects/{projectId}/hardwareTiers``: every tier."""
    return [tier_json(t) for t in HARDWARE_TIERS]


def environments_json() -> dict[str, Any]:
    """``GET /v4/projects/{projectId}/useableEnvironments``: the environments, the first one
    selected."""
    envs = [
        {"id": env_id, "name": name, "visibility": "Global", "supportedClusters": []}
        for env_id, name in ENVIRONMENTS
    ]
    return {"environments": envs, "currentlySelectedEnvironment": envs[0]}


def project_json(store: ExecutionStore, project: Project) -> dict[str, Any]:
    """``GET /v4/gateway/projects/findProjectByOwnerAndName``: the project's ids and names."""
    with store.lock:
        return {
            "id": project.id,
            "name": project.name,
            "ownerName": project.owner,
            "ownerId": project.owner_id,
            "mainRepository": None,
        }


def spark_settings_json() -> dict[str, Any]:
    """``GET /v4/jobs/project/{projectId}/defaultSparkSettings``: fixed defaults."""
    return {
        "maximumExecutionSlotsPerUser": 20,
        "executorHardwareTierId": "medium-k8s",
        "masterHardwareTierId": "small-k8s",
    }
