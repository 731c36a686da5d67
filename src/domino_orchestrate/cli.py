"""The ``domino-orchestrate`` command: start and follow Domino jobs from a shell, run the sandbox.

    domino-orchestrate run "python train.py" --title nightly      # v4 job, streamed, exit 0 on Succeeded
    domino-orchestrate run --run main.py arg1                       # a v1 run
    domino-orchestrate status JOB_ID | logs JOB_ID [--follow] | stop JOB_ID
    domino-orchestrate sandbox --port 8899 --project alice/demo=./demo
    domino-orchestrate lineage flush

Exit codes: 0 Succeeded, 1 the job failed (Failed/Error/Stopped), 2 bad usage or configuration,
3 timed out, 4 Domino API or connection error, 130 interrupted (the remote job is stopped).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, TextIO

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT, EXIT_API, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130


def _json_arg(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None


def _connection_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection (defaults: the Domino environment variables)")
    group.add_argument("--host", default=None, help="Domino URL (DOMINO_API_HOST)")
    group.add_argument("--api-key", default=None, help="API key (DOMINO_USER_API_KEY)")
    group.add_argument("--token-file", default=None, help="bearer token file (DOMINO_TOKEN_FILE)")
    group.add_argument("--api-proxy", default=None, help="API proxy (DOMINO_API_PROXY)")
    group.add_argument("--project", default=os.environ.get("DOMINO_PROJECT"),
                       help="owner/name (DOMINO_PROJECT, or DOMINO_PROJECT_OWNER/NAME)")
    group.add_argument("--timeout", type=float, default=30.0, help="per-request timeout, seconds")


def _poll_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--poll-freq", type=float, default=5.0)
    parser.add_argument("--max-poll-time", type=float, default=6000.0)
    parser.add_argument("--retry-count", type=int, default=5)
    parser.add_argument("--include-setup-log", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="domino-orchestrate", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command_name", required=True)

    run = sub.add_parser("run", help="start a job and follow it to its end")
    _connection_args(run)
    _poll_args(run)
    run.add_argument("command", nargs="+", help="the command (a v4 job joins it with spaces)")
    run.add_argument("--run", dest="v1", action="store_true", help="start a v1 run instead")
    run.add_argument("--direct", action="store_true", help="v1: run the command through the shell")
    run.add_argument("--title")
    run.add_argument("--hardware-tier", help="hardware tier name or id")
    run.add_argument("--environment-id")
    run.add_argument("--commit-id")
    run.add_argument("--branch")
    run.add_argument("--git-ref", type=_json_arg, help='JSON, e.g. {"type":"tags","value":"v1"}')
    run.add_argument("--spark", type=_json_arg, help="on-demand Spark cluster properties (JSON)")
    run.add_argument("--compute-cluster", type=_json_arg, help="compute cluster properties (JSON)")
    run.add_argument("--volume", action="append", help="external volume mount id (repeatable)")
    run.add_argument("--idempotency-key", help="reattach instead of starting twice for this key")
    run.add_argument("--no-wait", action="store_true", help="print the job id and return")

    for name, text in (("status", "print a job's status"), ("stop", "stop a job")):
        cmd = sub.add_parser(name, help=text)
        _connection_args(cmd)
        cmd.add_argument("job_id")
    logs = sub.add_parser("logs", help="print a job's stdout")
    _connection_args(logs)
    _poll_args(logs)
    logs.add_argument("job_id")
    logs.add_argument("--follow", "-f", action="store_true", help="stream until the job ends")

    sub.add_parser("sandbox", help="run a local Domino-compatible server", add_help=False)
    lineage = sub.add_parser("lineage", help="lineage maintenance")
    lineage.add_argument("action", choices=["flush"], help="deliver spooled lineage events")
    return parser


def _project(args: argparse.Namespace) -> str | None:
    if args.project:
        return str(args.project)
    owner, name = os.environ.get("DOMINO_PROJECT_OWNER"), os.environ.get("DOMINO_PROJECT_NAME")
    return f"{owner}/{name}" if owner and name else None


def _client(args: argparse.Namespace) -> Any:
    from domino_orchestrate.core import DominoClient

    return DominoClient(
        args.host, _project(args), api_key=args.api_key, domino_token_file=args.token_file,
        api_proxy=args.api_proxy, timeout=args.timeout,
    )


class _Console:
    """Job output on stdout/stderr; on a TTY, a live status line with elapsed time on stderr."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out, self.err = out, err
        self.live = err.isatty()
        self.status = "Submitting"
        self.job_id = ""
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> _Console:
        if self.live:
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._ticker:
            self._ticker.join(timeout=1)
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        if self.live:
            self.err.write("\r\033[K")

    def _draw(self) -> None:
        elapsed = int(time.monotonic() - self.started)
        self.err.write(f"\r\033[K[{self.status}] {self.job_id} {elapsed // 60:02d}:{elapsed % 60:02d}")
        self.err.flush()

    def _tick(self) -> None:
        while not self._done.wait(0.5):
            with self._lock:
                self._draw()

    # observer methods
    def on_submitted(self, handle: Any, spec: Any) -> None:
        self.job_id = handle.job_id
        verb = "Reattached to" if handle.attached else "Started"
        self.note(f"{verb} Domino {handle.kind} {handle.job_id}" + (f" {handle.url}" if handle.url else ""))

    def on_status(self, snapshot: Any) -> None:
        self.status = snapshot.raw_status or snapshot.status.value
        if not self.live:
            self.note(f"status: {self.status}")

    def on_line(self, line: Any) -> None:
        stream = self.err if line.stream == "stderr" else self.out
        with self._lock:
            self._clear()
            stream.write(line.text + "\n")
            stream.flush()
            if self.live:
                self._draw()

    def note(self, message: str) -> None:
        with self._lock:
            self._clear()
            self.err.write(message + "\n")
            self.err.flush()


def _cmd_run(args: argparse.Namespace) -> int:
    from domino_orchestrate.core import JobSpec, PollOptions, RunSpec, idempotency_key
    from domino_orchestrate.core.lineage import (
        LineageInfo,
        lineage_env,
        lineage_observers,
        with_env_prefix,
    )

    client = _client(args)
    key = args.idempotency_key or idempotency_key("cli", time.time_ns(), os.getpid())
    info = LineageInfo(orchestrator="cli", job_name=args.title or " ".join(args.command)[:80],
                       run_key=("cli", key))
    env = lineage_env(info, client.config)
    spec: JobSpec | RunSpec
    if args.v1:
        command = tuple(args.command)
        if args.direct:
            command = (with_env_prefix(" ".join(command), env),) if env else (" ".join(command),)
        spec = RunSpec(command=command, is_direct=args.direct, commit_id=args.commit_id,
                       title=args.title, tier=args.hardware_tier)
    else:
        tier = args.hardware_tier
        spec = JobSpec(
            command=with_env_prefix(" ".join(args.command), env) if env else " ".join(args.command),
            title=args.title, hardware_tier_name=tier, environment_id=args.environment_id,
            commit_id=args.commit_id, branch=args.branch, main_repo_git_ref=args.git_ref,
            on_demand_spark_cluster_properties=args.spark,
            compute_cluster_properties=args.compute_cluster, external_volume_mounts=args.volume,
        )
    options = PollOptions(poll_freq=args.poll_freq, max_poll_time=args.max_poll_time,
                          retry_count=args.retry_count, include_setup_log=args.include_setup_log)
    observers: list[Any] = list(lineage_observers(info, client.config))
    with _Console(sys.stdout, sys.stderr) as console:
        observers.insert(0, console)
        start = client.start_run if args.v1 else client.start_job
        handle = start(spec, idempotency_key=key, observers=observers)
        if args.no_wait:
            print(handle.job_id)
            return EXIT_OK
        final = client.wait(handle, options, observers=observers)
        console.note(f"Domino {handle.kind} {final.job_id} {final.raw_status}")
    return EXIT_OK


def _cmd_status(args: argparse.Namespace) -> int:
    snapshot = _client(args).get_job(args.job_id)
    print(json.dumps(snapshot.summary(), indent=2, default=str))
    return EXIT_OK if not snapshot.status.is_failure else EXIT_FAILED


def _cmd_stop(args: argparse.Namespace) -> int:
    final = _client(args).stop_job(args.job_id)
    print(f"{args.job_id} {final.raw_status if final else 'stop requested'}")
    return EXIT_OK


def _cmd_logs(args: argparse.Namespace) -> int:
    from domino_orchestrate.core import JobHandle, PollOptions

    client = _client(args)
    if not args.follow:
        for line in client.stdout(args.job_id, include_setup_log=args.include_setup_log):
            (sys.stderr if line.stream == "stderr" else sys.stdout).write(line.text + "\n")
        return EXIT_OK
    options = PollOptions(poll_freq=args.poll_freq, max_poll_time=args.max_poll_time,
                          retry_count=args.retry_count, include_setup_log=args.include_setup_log,
                          stop_on_timeout=False)
    with _Console(sys.stdout, sys.stderr) as console:
        # Following logs must never stop someone else's job: interrupts just end the follow.
        client.wait(JobHandle(args.job_id), options, observers=[console])
    return EXIT_OK


def _cmd_lineage(args: argparse.Namespace) -> int:
    from domino_orchestrate.core.lineage import flush_spool

    delivered, remaining = flush_spool()
    print(f"delivered {delivered} spooled lineage event(s); {remaining} remaining")
    return EXIT_OK if remaining == 0 else EXIT_API


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "sandbox":
        from domino_orchestrate.sandbox.server import main as sandbox_main

        return int(sandbox_main(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    from domino_orchestrate.core import (
        ConfigurationError,
        DominoError,
        JobFailedError,
        PollTimeoutError,
        StopNotConfirmedError,
    )

    handlers = {"run": _cmd_run, "status": _cmd_status, "stop": _cmd_stop, "logs": _cmd_logs,
                "lineage": _cmd_lineage}
    try:
        return handlers[args.command_name](args)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except JobFailedError as exc:
        print(f"error: Domino job {exc.job_id} ended {exc.status.value}", file=sys.stderr)
        return EXIT_FAILED
    except (PollTimeoutError, StopNotConfirmedError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_TIMEOUT
    except DominoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_API
    except KeyboardInterrupt:
        print("interrupted; the Domino job was asked to stop", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(main())
