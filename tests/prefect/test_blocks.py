"""The DominoCredentials and DominoJob blocks: registration (API and `prefect block register`),
save/load with the secret kept secret, env-var fallback, and the JobBlock/JobRun pattern
(trigger → wait_for_completion → fetch_result) from sync and async flows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from pydantic import SecretStr

from domino_orchestrate.core import JobFailedError
from domino_orchestrate.prefect import DominoCredentials, DominoJob, DominoJobRun


def _title(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}"


def test_register_type_and_schema(prefect_api: str) -> None:
    DominoCredentials.register_type_and_schema()
    DominoJob.register_type_and_schema()
    with get_client(sync_client=True) as client:
        creds_type = client.read_block_type_by_slug("domino-credentials")
        job_type = client.read_block_type_by_slug("domino-job")
        schema = client.get_most_recent_block_schema_for_block_type(creds_type.id)
    assert creds_type.name == "Domino Credentials"
    assert job_type.name == "Domino Job"
    assert schema is not None
    assert {"api_key", "auth_token"} <= set(schema.fields["secret_fields"])


def test_prefect_block_register_cli(prefect_api: str) -> None:
    exe = os.path.join(os.path.dirname(sys.executable), "prefect")
    out = subprocess.run(
        [exe, "block", "register", "-m", "domino_orchestrate.prefect"],
        env={**os.environ, "PREFECT_API_URL": prefect_api}, capture_output=True, text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Domino Credentials" in out.stdout and "Domino Job" in out.stdout


def test_save_load_keeps_secret_secret(sandbox: Any, prefect_api: str) -> None:
    name = f"domino-{uuid.uuid4().hex[:8]}"
    DominoCredentials(host=sandbox.url, api_key=sandbox.api_key,
                      project="demo/quick-start").save(name)
    loaded = DominoCredentials.load(name)
    assert isinstance(loaded.api_key, SecretStr)
    assert loaded.api_key.get_secret_value() == sandbox.api_key
    assert sandbox.api_key not in repr(loaded)
    with get_client(sync_client=True) as client:
        doc = client.read_block_document_by_name(name, "domino-credentials", include_secrets=False)
    assert sandbox.api_key not in json.dumps(doc.data, default=str)
    config = loaded.get_config()
    assert config.host == sandbox.url and config.project == "demo/quick-start"
    assert sandbox.api_key not in repr(config)
    with loaded.get_client() as client:
        assert client.project_id()


def test_env_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOMINO_API_HOST", "https://domino.example.com/some/path")
    monkeypatch.setenv("DOMINO_USER_API_KEY", "env-key-123456")
    config = DominoCredentials(project="a/b").get_config()
    assert config.host == "https://domino.example.com"
    assert config.credentials.kind == "api_key"
    assert config.credentials.api_key == "env-key-123456"
    # An explicit token wins over the environment's API key.
    token = DominoCredentials(auth_token=SecretStr("tok-abcdef")).get_config("c/d")
    assert token.credentials.kind == "token" and token.project == "c/d"


def test_domino_job_block_sync(creds: DominoCredentials, h: Any, sandbox: Any) -> None:
    title = _title("blk")
    job = DominoJob(credentials=creds, command="echo block-line", title=title, poll_freq=0.5)

    @flow
    def pipeline() -> tuple[dict[str, Any], DominoJobRun]:
        run = job.trigger()
        run.wait_for_completion()
        return run.fetch_result(), run

    state = pipeline(return_state=True)
    summary, run = state.result()
    assert isinstance(run, DominoJobRun)
    assert summary["status"] == "Succeeded" and summary["job_id"] == run.job_id
    assert "block-line" in h.read_logs(state.state_details.flow_run_id)
    assert h.starts(sandbox, title) == 1


async def test_domino_job_block_async_and_failure(creds: DominoCredentials, h: Any) -> None:
    job = DominoJob(credentials=creds, command="echo async-block; exit 2", title=_title("ablk"),
                    poll_freq=0.5)

    @flow
    async def pipeline() -> dict[str, Any]:
        run = await job.trigger()
        with pytest.raises(JobFailedError, match="ended Failed"):
            await run.wait_for_completion()
        return await run.fetch_result()

    summary = await pipeline()
    assert summary["status"] == "Failed"


def test_domino_job_block_save_load(creds: DominoCredentials, prefect_api: str) -> None:
    name = f"job-{uuid.uuid4().hex[:8]}"
    DominoJob(credentials=creds, command="python train.py", hardware_tier_name="Small").save(name)
    loaded = DominoJob.load(name)
    assert loaded.command == "python train.py"
    assert loaded.credentials.api_key is not None
    assert loaded.credentials.api_key.get_secret_value() == creds.api_key.get_secret_value()  # type: ignore[union-attr]
    assert loaded.job_spec().hardware_tier_name == "Small"


def test_credentials_parameter_accepts_a_saved_block_by_reference(sandbox: Any,
                                                                  prefect_api: str) -> None:
    """What the server does with the UI's "select block": check ``{"$ref": …}`` against the
    deployment's parameter schema (oneOf[inline block, reference]); then the flow loads it."""
    from prefect.utilities.callables import parameter_schema
    from prefect.utilities.schema_tools.validation import preprocess_schema, validate

    from domino_orchestrate.prefect.flows import run_domino_job

    schema = preprocess_schema(parameter_schema(run_domino_job.fn).model_dump_for_openapi())
    name = f"by-ref-{uuid.uuid4().hex[:8]}"
    block_id = DominoCredentials(host=sandbox.url, api_key=sandbox.api_key,
                                 project="demo/quick-start").save(name)
    reference = {"$ref": {"block_document_id": str(block_id)}}
    for credentials in (reference, {"host": sandbox.url}, {}, "prod",
                        json.loads(DominoCredentials(host=sandbox.url).model_dump_json())):
        validate({"credentials": credentials, "command": "echo"}, schema, raise_on_error=True,
                 preprocess=False, ignore_required=True)
    with pytest.raises(Exception, match="credentials"):
        validate({"credentials": {"host": 3}, "command": "echo"}, schema, raise_on_error=True,
                 preprocess=False, ignore_required=True)
    resolved = run_domino_job.validate_parameters({"credentials": reference, "command": "echo"})
    assert isinstance(resolved["credentials"], DominoCredentials)
    assert resolved["credentials"].host == sandbox.url


def test_ca_bundle_path_reaches_the_core(tmp_path: Any) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    creds = DominoCredentials(host="https://domino.example.com", api_key="k", verify=str(bundle))
    assert creds.get_config().verify == str(bundle)
    assert DominoCredentials(host="https://domino.example.com", api_key="k",
                             verify=False).get_config().verify is False
