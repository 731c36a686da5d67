"""The ``domino-orchestrate`` command: start and follow Domino jobs from a shell, run the sandbox.

    domino-orchestrate run "python train.py" --title nightly      # v4 job, streamed, exit 0 on Succeeded
    domino-orchestrate run --run main.py arg1                       # a v1 run
    domino-orchestrate status JOB_ID | logs JOB_ID [--follow] | stop JOB_ID
    domino-orchestrate sandbox --port 8899 --project alice/demo=./demo
    domino-orchestrate lineage flush

Exit codes are in ``EXIT_CODES`` (printed by ``--help``). Signals: see ``_signals``; what reaches the
terminal: see ``_terminal``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._signals import Interrupted, SignalGuard, exit_code
from ._terminal import (
    Console,
    apply_log_level,
    log_to_stderr,
    one_line,
    release_streams,
    robust_streams,
    safe_text,
)

log = logging.getLogger("domino_orchestrate")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT, EXIT_API = 0, 1, 2, 3, 4
EXIT_INTERNAL = 70  # sysexits.h EX_SOFTWARE: a bug in domino-orchestrate, not in the job or Domino
EXIT_INTERRUPTED = 130  # 128 + SIGINT; in general 128 + the signal number
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: stdout's reader went away (`logs JOB | head`)

EXIT_CODES = """\
exit codes:
  0      succeeded (run, logs -f: the job Succeeded; status: the job has not failed)
  1      the job ended Failed, Error or Stopped
  2      bad input: usage, options, configuration (host, credentials, project, CA bundle)
  3      timed out: --max-poll-time passed (run stops the job), or a stop was not confirmed
  4      could not talk to Domino: network, TLS, HTTP errors, invalid or unexpected responses
  70     internal error in domino-orchestrate (please report it; -vv shows the traceback)
  128+N  ended by signal N: 130 Ctrl-C (SIGINT), 143 SIGTERM, 129 SIGHUP. run stops its job
         and confirms the stop first; logs --follow never stops the job it watches.
         141 (SIGPIPE): logs lost its reader (logs JOB | head)
"""


def _json_arg(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None


def _connection_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection (defaults: the Domino environment variables)")
    group.add_argument("--host", default=None, help="Domino URL (DOMINO_API_HOST)")
    group.add_argument("--api-key", default=None, help="API key (DOMINO_USER_API_KEY)")
    group.add_argument("--auth-token", default=None,
                       help="bearer token (visible to other local users in the process list: "
                            "prefer --token-file)")
    group.add_argument("--token-file", default=None, help="bearer token file (DOMINO_TOKEN_FILE)")
    group.add_argument("--api-proxy", default=None, help="API proxy (DOMINO_API_PROXY)")
    group.add_argument("--project", default=os.environ.get("DOMINO_PROJECT"),
                       help="owner/name (DOMINO_PROJECT, or DOMINO_PROJECT_OWNER/NAME)")
    group.add_argument("--timeout", type=float, default=30.0,
                       help="seconds a request to Domino may take (default 30)")
    group.add_argument("--ca-bundle", type=_existing_path, default=None, metavar="PATH",
                       help="CA certificates (file or directory) to verify Domino's TLS "
                            "certificate, e.g. a private CA (DOMINO_VERIFY_CERTIFICATE=PATH)")


def _existing_path(value: str) -> str:
    if not Path(value).exists():
        raise argparse.ArgumentTypeError(f"no such file or directory: {value!r}")
    return value


def _common_args() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                        help="more log output on stderr: -v info, -vv debug "
                             "(default: DOMINO_LOG_LEVEL, else warnings)")
    return common


def _poll_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--poll-freq", type=float, default=5.0,
                        help="seconds between status polls, at most (default 5)")
    parser.add_argument("--max-poll-time", type=float, default=6000.0,
                        help="seconds to follow the job before giving up (default 6000); run "
                             "then stops the job, logs --follow leaves it running")
    parser.add_argument("--retry-count", type=int, default=5,
                        help="consecutive failed polls tolerated (default 5)")
    parser.add_argument("--include-setup-log", action="store_true",
                        help="also print Domino's setup log")


def _stop_timeout_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stop-timeout", type=float, default=60.0,
                        help="seconds to wait for a stop (after a signal, or --max-poll-time) to "
                             "be confirmed (default 60)")


def _subparser(sub: Any, name: str, text: str, **kwargs: Any) -> argparse.ArgumentParser:
    return sub.add_parser(  # type: ignore[no-any-return]
        name, help=text, description=text, parents=[_common_args()], epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="domino-orchestrate", epilog=EXIT_CODES,
        description="Start and follow Domino jobs from a shell; run a local Domino sandbox.",
        parents=[_common_args()], formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command_name", required=True, metavar="COMMAND",
                                title="commands")

    run = _subparser(sub, "run", "start a job and follow it to its end; a signal stops it")
    _connection_args(run)
    _poll_args(run)
    run.add_argument("command", nargs="+",
                     help="the command: one argument is a shell command line, sent as written "
                          "(\"python train.py --lr 0.1\"); several are the words of one command, "
                          "quoted so each reaches the job as one word")
    run.add_argument("--run", dest="v1", action="store_true", help="start a v1 run instead")
    run.add_argument("--direct", action="store_true", help="v1: run the command through the shell")
    run.add_argument("--title", help="the job's title in Domino")
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
    _stop_timeout_arg(run)

    for name, text in (("status", "print a job's status"),
                       ("stop", "stop a job and confirm it stopped")):
        cmd = _subparser(sub, name, text)
        _connection_args(cmd)
        cmd.add_argument("job_id")
        if name == "stop":
            _stop_timeout_arg(cmd)
    logs = _subparser(sub, "logs", "print a job's stdout; --follow watches it, never stops it")
    _connection_args(logs)
    _poll_args(logs)
    logs.add_argument("job_id")
    logs.add_argument("--follow", "-f", action="store_true", help="stream until the job ends")

    sub.add_parser("sandbox", help="run a local Domino-compatible server", add_help=False)
    lineage = _subparser(sub, "lineage", "lineage maintenance")
    lineage.add_argument("action", choices=["flush"], help="deliver spooled lineage events")
    return parser


def _project(args: argparse.Namespace) -> str | None:
    if args.project:
        return str(args.project)
    owner, name = os.environ.get("DOMINO_PROJECT_OWNER"), os.environ.get("DOMINO_PROJECT_NAME")
    return f"{owner}/{name}" if owner and name else None


def _client(args: argparse.Namespace) -> Any:
    from domino_orchestrate.core import DominoClient
    from domino_orchestrate.core.config import without_userinfo

    client = DominoClient(
        args.host, _project(args), api_key=args.api_key, auth_token=args.auth_token,
        domino_token_file=args.token_file, api_proxy=args.api_proxy, timeout=args.timeout,
        verify=args.ca_bundle,
    )
    apply_log_level(args.verbose)  # the flags win over DOMINO_LOG_LEVEL, which the config re-read
    config = client.config
    log.info("Domino %s, project %s, authentication: %s%s", without_userinfo(config.host),
             config.project or "(none)", config.credentials.kind,
             f", CA bundle {config.verify}" if isinstance(config.verify, str) else "")
    return client


def _poll_options(args: argparse.Namespace, **fields: Any) -> Any:
    from domino_orchestrate.core import PollOptions

    values = {
        "poll_freq": args.poll_freq, "max_poll_time": args.max_poll_time,
        "retry_count": args.retry_count, "include_setup_log": args.include_setup_log,
        "timeout_name": "--max-poll-time",  # timeout messages name the flag the user can raise
        **fields,
    }
    known = {field.name for field in dataclasses.fields(PollOptions)}  # an older core lacks some
    return PollOptions(**{name: value for name, value in values.items() if name in known})


def _signal_name(exc: BaseException) -> str:
    return type(exc).__name__ if isinstance(exc, Interrupted) else "SIGINT"


def _command_line(words: Sequence[str]) -> str:
    """What the user wrote, as the one command line Domino runs: a single argument as is; several
    shell-quoted, so `run printf '%s|' 'a b'` reaches the job as those two words, not three."""
    return words[0] if len(words) == 1 else shlex.join(words)


def _cmd_run(args: argparse.Namespace) -> int:
    from domino_orchestrate.core import JobSpec, RunSpec, idempotency_key
    from domino_orchestrate.core.lineage import (
        LineageInfo,
        lineage_env,
        lineage_observers,
        with_env_prefix,
    )

    client = _client(args)
    key = args.idempotency_key or idempotency_key("cli", time.time_ns(), os.getpid())
    command_line = _command_line(args.command)
    info = LineageInfo(orchestrator="cli", job_name=args.title or command_line[:80],
                       run_key=("cli", key))
    env = lineage_env(info, client.config)
    spec: JobSpec | RunSpec
    if args.v1:
        command = tuple(args.command)
        if args.direct:
            command = (with_env_prefix(command_line, env) if env else command_line,)
        spec = RunSpec(command=command, is_direct=args.direct, commit_id=args.commit_id,
                       title=args.title, tier=args.hardware_tier)
    else:
        tier = args.hardware_tier
        spec = JobSpec(
            command=with_env_prefix(command_line, env) if env else command_line,
            title=args.title, hardware_tier_name=tier, environment_id=args.environment_id,
            commit_id=args.commit_id, branch=args.branch, main_repo_git_ref=args.git_ref,
            on_demand_spark_cluster_properties=args.spark,
            compute_cluster_properties=args.compute_cluster, external_volume_mounts=args.volume,
        )
    options = _poll_options(args, stop_timeout=args.stop_timeout)
    observers: list[Any] = list(lineage_observers(info, client.config))
    with Console(sys.stdout, sys.stderr) as console:
        observers.insert(0, console)
        try:
            start = client.start_run if args.v1 else client.start_job
            handle = start(spec, idempotency_key=key, observers=observers)
            if args.no_wait:
                print(handle.job_id)
                return EXIT_OK
            final = client.wait(handle, options, observers=observers)
        except (Interrupted, KeyboardInterrupt) as exc:
            # The client has already stopped the job (or what the interrupted start created)
            # and reported the outcome to the console; say how it ended, last.
            console.note(_interrupted_run(_signal_name(exc), console))
            return exit_code(exc)
        console.note(f"Domino {handle.kind} {final.job_id} {final.raw_status}")
    return EXIT_OK


def _interrupted_run(name: str, console: Console) -> str:
    from domino_orchestrate.core import DominoError

    job = console.job_id
    if isinstance(console.error, DominoError):
        return (f"interrupted by {name}: the stop of Domino job {job} was not confirmed "
                f"({console.error}); check the job in Domino")
    if console.final is not None and console.final.is_terminal:
        return f"interrupted by {name}: Domino job {console.final.job_id} stopped " \
               f"({console.final.raw_status})"
    if not job:
        return f"interrupted by {name} before a Domino job was started"
    return f"interrupted by {name}: Domino job {job} was asked to stop"


def _cmd_status(args: argparse.Namespace) -> int:
    snapshot = _client(args).get_job(args.job_id)
    print(json.dumps(snapshot.summary(), indent=2, default=str))
    return EXIT_OK if not snapshot.status.is_failure else EXIT_FAILED


def _cmd_stop(args: argparse.Namespace) -> int:
    final = _client(args).stop_job(args.job_id, timeout=args.stop_timeout)
    print(safe_text(f"{args.job_id} {final.raw_status if final else 'stop requested'}"))
    return EXIT_OK


def _cmd_logs(args: argparse.Namespace) -> int:
    from domino_orchestrate.core import JobHandle

    client = _client(args)
    if not args.follow:
        for line in client.stdout(args.job_id, include_setup_log=args.include_setup_log):
            stream = sys.stderr if line.stream == "stderr" else sys.stdout
            stream.write(safe_text(line.text) + "\n")
        return EXIT_OK
    # Watching never stops a job: neither an interrupt nor --max-poll-time stops it.
    options = _poll_options(args, stop_on_timeout=False, stop_on_interrupt=False)
    with Console(sys.stdout, sys.stderr) as console:
        console.job_id = safe_text(args.job_id)
        try:
            client.wait(JobHandle(args.job_id), options, observers=[console])
        except (Interrupted, KeyboardInterrupt) as exc:
            console.note(f"interrupted by {_signal_name(exc)}: stopped following Domino job "
                         f"{args.job_id}; it keeps running (domino-orchestrate stop "
                         f"{args.job_id} stops it)")
            return exit_code(exc)
    return EXIT_OK


def _cmd_lineage(args: argparse.Namespace) -> int:
    from domino_orchestrate.core.lineage import flush_spool

    delivered, remaining = flush_spool()
    print(f"delivered {delivered} spooled lineage event(s); {remaining} remaining")
    return EXIT_OK if remaining == 0 else EXIT_API


def _error(message: object) -> None:
    with contextlib.suppress(OSError):  # stderr gone (a closed terminal): the exit code tells
        sys.stderr.write(f"error: {one_line(str(message))}\n")
        sys.stderr.flush()


def _repeat_signal_message(signum: int) -> str:
    return ("domino-orchestrate: already ending (stopping the job, if this command owns one); "
            "the stop is bounded by --stop-timeout")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "sandbox":
        from domino_orchestrate.sandbox.server import main as sandbox_main

        return int(sandbox_main(argv[1:]) or 0)
    robust_streams()
    args = build_parser().parse_args(argv)
    args.verbose = getattr(args, "verbose", 0)
    log_to_stderr()
    handlers = {"run": _cmd_run, "status": _cmd_status, "stop": _cmd_stop, "logs": _cmd_logs,
                "lineage": _cmd_lineage}
    try:
        with SignalGuard(_repeat_signal_message):
            return _dispatch(handlers[args.command_name], args)
    except (Interrupted, KeyboardInterrupt) as exc:
        # A signal outside a job's wait (status, stop, logs, a start being set up).
        _error(f"interrupted by {_signal_name(exc)}")
        return exit_code(exc)
    finally:
        release_streams()


def _dispatch(handler: Any, args: argparse.Namespace) -> int:
    from domino_orchestrate.core import (
        ConfigurationError,
        DominoError,
        JobFailedError,
        PollTimeoutError,
        StopNotConfirmedError,
    )

    try:
        apply_log_level(args.verbose)
        return int(handler(args))
    except ConfigurationError as exc:
        _error(exc)
        return EXIT_USAGE
    except JobFailedError as exc:
        _error(f"Domino job {exc.job_id} ended {exc.status.value}")
        return EXIT_FAILED
    except (PollTimeoutError, StopNotConfirmedError) as exc:
        _error(exc)
        return EXIT_TIMEOUT
    except DominoError as exc:
        # Network, TLS, HTTP errors and answers that are not what Domino sends.
        _error(exc)
        return EXIT_API
    except BrokenPipeError:
        # `logs JOB | head`: the reader left. End quietly, as a program killed by SIGPIPE would.
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        log.debug("Internal error", exc_info=True)
        _error(f"internal error in domino-orchestrate: {type(exc).__name__}: {exc} "
               "(please report it; -vv shows the traceback)")
        return EXIT_INTERNAL


if __name__ == "__main__":
    raise SystemExit(main())
