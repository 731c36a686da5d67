"""The domino-orchestrate command: start and follow Domino jobs from a shell, run the sandbox.

    domino-orchestrate run "python train.py" --title nightly      # v4 job, streamed, exit 0 on Succeeded
    domino-orchestrate run --run main.py arg1                       # a v1 run
    domino-orchestrate status JOB_ID | logs JOB_ID [--follow] | stop JOB_ID
    domino-orchestrate sandbox --port 8899 --project alice/demo=./demo
    domino-orchestrate lineage flush

Built on typer (parsing, help, shell completion) and rich (tables, colours, the live status line;
only on a terminal, never with NO_COLOR colours). Exit codes are in EXIT_CODES (printed by
--help). Signals: see _signals; what reaches the terminal: see _terminal. The entry point is
main().
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import json
import logging
import os
import shlex
import sys
import time
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._signals import Interrupted, SignalGuard, handled_exit_code
from ._terminal import (
    Console,
    apply_log_level,
    log_to_stderr,
    one_line,
    release_streams,
    render,
    robust_streams,
    safe_text,
    status_style,
)

if TYPE_CHECKING:
    from domino_orchestrate.core.lineage import Dataset

log = logging.getLogger("domino_orchestrate")

PROG = "domino-orchestrate"

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_TIMEOUT, EXIT_API = 0, 1, 2, 3, 4
EXIT_INTERNAL = 70  # sysexits.h EX_SOFTWARE: a bug in domino-orchestrate, not in the job or Domino
EXIT_INTERRUPTED = 130  # 128 + SIGINT; in general 128 + the signal number
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: stdout's reader went away (`logs JOB | head`)

# The --help epilog (rich keeps its line breaks; no square brackets: they would be markup).
EXIT_CODES = """\
exit codes:
  0      succeeded (run, logs -f: the job Succeeded; status: it has not failed)
  1      the job ended Failed, Error or Stopped
  2      bad input: usage, options, configuration (host, key, project, CA bundle)
  3      timed out: --max-poll-time passed (run stops the job), or a stop was
         not confirmed
  4      could not talk to Domino: network, TLS, HTTP errors, invalid answers
  5      lineage: the store has nothing of that name (run, output, component)
  6      lineage import: a line that is not an OpenLineage RunEvent
  70     internal error in domino-orchestrate (please report it; -vv shows why)
  128+N  ended by signal N: 130 Ctrl-C (SIGINT), 143 SIGTERM, 129 SIGHUP; run
         stops its job and confirms the stop first; logs --follow never stops
         the job it watches; 141 (SIGPIPE): logs lost its reader (logs | head)
"""

_CONNECTION = "Connection (defaults: the Domino environment variables)"
_POLLING = "Following the job"
_JOB = "The job"
_LINEAGE = "Lineage"


# --- option values -------------------------------------------------------------------------------


def _existing_path(value: str | None) -> str | None:
    if value is not None and not Path(value).exists():
        raise typer.BadParameter(f"no such file or directory: {value!r}")
    return value


def _json_value(value: str | None) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError as exc:
        raise typer.BadParameter(f"not valid JSON: {exc}") from None


def _with_earlier_verbosity(ctx: typer.Context, value: int) -> int:
    """-v counts before and after the command name: -v run -v is -vv (the root's count is in
    ctx.obj, set before a command's options are read)."""
    return int((ctx.obj or {}).get("verbose", 0)) + value


def _version(value: bool) -> None:
    if value:
        from domino_orchestrate import __version__

        typer.echo(f"{PROG} {__version__}")
        raise typer.Exit()


# Options shared by several commands, declared once.
Verbose = Annotated[int, typer.Option(
    "-v", "--verbose", count=True, show_default=False, metavar="",
    callback=_with_earlier_verbosity,
    help="More log output on stderr: -v info, -vv debug (default: DOMINO_LOG_LEVEL, else "
         "warnings).")]
Host = Annotated[str | None, typer.Option(
    help="Domino URL (default DOMINO_API_HOST).", rich_help_panel=_CONNECTION)]
ApiKey = Annotated[str | None, typer.Option(
    help="API key (default DOMINO_USER_API_KEY).", rich_help_panel=_CONNECTION)]
AuthToken = Annotated[str | None, typer.Option(
    help="Bearer token; other local users can read it in the process list, so prefer "
         "--token-file.", rich_help_panel=_CONNECTION)]
TokenFile = Annotated[str | None, typer.Option(
    help="File holding a bearer token (default DOMINO_TOKEN_FILE).", rich_help_panel=_CONNECTION)]
ApiProxy = Annotated[str | None, typer.Option(
    help="Domino API proxy (default DOMINO_API_PROXY).", rich_help_panel=_CONNECTION)]
Project = Annotated[str | None, typer.Option(
    help="The project, owner/name (default DOMINO_PROJECT, or DOMINO_PROJECT_OWNER and "
         "DOMINO_PROJECT_NAME).", rich_help_panel=_CONNECTION)]
RequestTimeout = Annotated[float, typer.Option(
    "--timeout", help="Seconds a whole request to Domino may take.", rich_help_panel=_CONNECTION)]
CaBundle = Annotated[str | None, typer.Option(
    metavar="PATH", callback=_existing_path, rich_help_panel=_CONNECTION,
    help="CA certificates (file or directory) to verify Domino's TLS certificate, e.g. a private "
         "CA (default DOMINO_VERIFY_CERTIFICATE=PATH).")]
PollFreq = Annotated[float, typer.Option(
    help="Seconds between status polls, at most.", rich_help_panel=_POLLING)]
MaxPollTime = Annotated[float, typer.Option(
    help="Seconds to follow the job before giving up; run then stops the job, logs --follow "
         "leaves it running.", rich_help_panel=_POLLING)]
RetryCount = Annotated[int, typer.Option(
    help="Consecutive failed polls tolerated.", rich_help_panel=_POLLING)]
LogInterval = Annotated[float | None, typer.Option(
    help="Seconds between live output fetches. Default: run fetches within python-domino's "
         "request budget (about every 12 polls); logs --follow every --poll-freq.",
    rich_help_panel=_POLLING, show_default=False)]
IncludeSetupLog = Annotated[bool, typer.Option(
    "--include-setup-log", help="Also print Domino's setup log.", rich_help_panel=_POLLING)]
StopTimeout = Annotated[float, typer.Option(
    help="Seconds to wait for a stop (after a signal, --max-poll-time, or stop) to be "
         "confirmed.", rich_help_panel=_POLLING)]
JsonOutput = Annotated[bool, typer.Option(
    "--json", help="Print JSON on stdout instead of text for people.")]
JobId = Annotated[str, typer.Argument(help="The Domino job (or run) id.", show_default=False,
                                      metavar="JOB_ID")]


# An option group is a dataclass whose fields are options (annotated as above, with their
# defaults). A command takes the whole group as one parameter; _with_option_groups declares each
# field as an option of that command, so every command lists them all in its --help.


@dataclasses.dataclass(frozen=True)
class Connection:
    """How to reach Domino, from the connection options (unset: the core reads the env)."""

    host: Host = None
    api_key: ApiKey = None
    auth_token: AuthToken = None
    token_file: TokenFile = None
    api_proxy: ApiProxy = None
    project: Project = None
    timeout: RequestTimeout = 30.0
    ca_bundle: CaBundle = None
    verbose: Verbose = 0


@dataclasses.dataclass(frozen=True)
class Polling:
    """How to follow a job, from the polling options."""

    poll_freq: PollFreq = 5.0
    max_poll_time: MaxPollTime = 6000.0
    retry_count: RetryCount = 5
    log_interval: LogInterval = None
    include_setup_log: IncludeSetupLog = False


_OPTION_GROUPS = (Connection, Polling)


def _with_option_groups(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` with each parameter annotated with an option group (``Connection``,
    ``Polling``) replaced by the group's fields, as options of their own; when called, the
    command gets the group built from those options. Put it under ``@app.command``."""
    signature = inspect.signature(command, eval_str=True)
    groups: dict[str, Any] = {}
    parameters: list[inspect.Parameter] = []
    for parameter in signature.parameters.values():
        group = parameter.annotation
        if group not in _OPTION_GROUPS:
            parameters.append(parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY))
            continue
        groups[parameter.name] = group
        hints = typing.get_type_hints(group, include_extras=True)
        parameters += [inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY,
                                         annotation=hints[field.name], default=field.default)
                       for field in dataclasses.fields(group)]
    names = [parameter.name for parameter in parameters]
    assert len(names) == len(set(names)), f"{command.__name__}: an option is declared twice"

    @functools.wraps(command)
    def with_groups(**options: Any) -> None:
        for name, group in groups.items():
            options[name] = group(**{field.name: options.pop(field.name)
                                     for field in dataclasses.fields(group)})
        command(**options)

    # typer reads the options from the signature (it prefers __signature__ to __wrapped__'s).
    with_groups.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=parameters)
    return with_groups


# --- the app -------------------------------------------------------------------------------------

app = typer.Typer(
    name=PROG,
    help="Start and follow Domino jobs from a shell; run a local Domino sandbox.",
    epilog=EXIT_CODES,
    rich_markup_mode="rich",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # our own one-line errors and exit codes (see _dispatch)
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    ctx: typer.Context,
    verbose: Verbose = 0,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True,
        help="Print the version of domino-orchestrate and exit.")] = False,
) -> None:
    """Start and follow Domino jobs from a shell; run a local Domino sandbox."""
    ctx.obj = {"verbose": verbose}


@app.command(epilog=EXIT_CODES, help=(
    "Start a job and follow it to its end, streaming its output; a signal stops it.\n\n"
    "With --json the job's output goes to stderr, and stdout gets one JSON document: "
    '{"handle": ..., "final": ...} (final is null with --no-wait).'))
@_with_option_groups
def run(
    command: Annotated[list[str], typer.Argument(
        show_default=False, metavar="COMMAND",
        help='The command. One argument is a shell command line, sent as written ("python '
             'train.py --lr 0.1"); several are the words of one command, quoted so each reaches '
             "the job as one word. Put -- before a command whose words start with a dash.")],
    v1: Annotated[bool, typer.Option("--run", help="Start a v1 run instead of a v4 job.",
                                     rich_help_panel=_JOB)] = False,
    direct: Annotated[bool, typer.Option(
        "--direct", help="v1 runs: run the command through the shell.",
        rich_help_panel=_JOB)] = False,
    title: Annotated[str | None, typer.Option(
        help="The job's title in Domino.", rich_help_panel=_JOB)] = None,
    hardware_tier: Annotated[str | None, typer.Option(
        help="Hardware tier name or id.", rich_help_panel=_JOB)] = None,
    environment_id: Annotated[str | None, typer.Option(
        help="Compute environment id.", rich_help_panel=_JOB)] = None,
    commit_id: Annotated[str | None, typer.Option(
        help="Project files commit to run.", rich_help_panel=_JOB)] = None,
    branch: Annotated[str | None, typer.Option(
        help="Git branch of the main repository.", rich_help_panel=_JOB)] = None,
    git_ref: Annotated[str | None, typer.Option(
        callback=_json_value, metavar="JSON", rich_help_panel=_JOB,
        help='Git ref of the main repository as JSON, e.g. {"type":"tags","value":"v1"}.')] = None,
    spark: Annotated[str | None, typer.Option(
        callback=_json_value, metavar="JSON", rich_help_panel=_JOB,
        help="On-demand Spark cluster properties (JSON).")] = None,
    compute_cluster: Annotated[str | None, typer.Option(
        callback=_json_value, metavar="JSON", rich_help_panel=_JOB,
        help="Compute cluster properties (JSON).")] = None,
    volume: Annotated[list[str] | None, typer.Option(
        metavar="ID", help="External volume mount id (repeatable).", rich_help_panel=_JOB)] = None,
    idempotency_key: Annotated[str | None, typer.Option(
        help="Reattach to the job started with this key instead of starting another.",
        rich_help_panel=_JOB)] = None,
    no_wait: Annotated[bool, typer.Option(
        "--no-wait", help="Print the job id and return without following the job.",
        rich_help_panel=_JOB)] = False,
    inputs: Annotated[list[str] | None, typer.Option(
        "--input", metavar="DATASET", rich_help_panel=_LINEAGE,
        help="A dataset the job reads, for lineage (repeatable): NAMESPACE:NAME, e.g. "
             "warehouse:sales.orders, or a URI, e.g. s3://bucket/raw/orders.csv.")] = None,
    outputs: Annotated[list[str] | None, typer.Option(
        "--output", metavar="DATASET", rich_help_panel=_LINEAGE,
        help="A dataset the job writes, for lineage (repeatable); same forms as --input.")] = None,
    json_output: JsonOutput = False,
    *, connection: Connection, polling: Polling,
    stop_timeout: StopTimeout = 60.0,
) -> None:
    """Start a job and follow it to its end, streaming its output; a signal stops it."""
    request = RunRequest(
        words=tuple(command), v1=v1, direct=direct, title=title, hardware_tier=hardware_tier,
        environment_id=environment_id, commit_id=commit_id, branch=branch, git_ref=git_ref,
        spark=spark, compute_cluster=compute_cluster, volumes=tuple(volume or ()),
        idempotency_key=idempotency_key, no_wait=no_wait, inputs=_checked(inputs, "--input"),
        outputs=_checked(outputs, "--output"), stop_timeout=stop_timeout, json_output=json_output,
    )
    raise typer.Exit(_dispatch(connection.verbose, _cmd_run, connection, polling, request))


def _checked(values: list[str] | None, option: str) -> tuple[Dataset, ...]:
    """The option's dataset names by the core's one rule (OpenLineage's naming spec); a bad one
    is a usage error naming the option."""
    from domino_orchestrate.core.lineage import DatasetNameError, parse_datasets

    try:
        return parse_datasets(values or ())
    except DatasetNameError as exc:
        raise typer.BadParameter(str(exc), param_hint=f"'{option}'") from None


@app.command(epilog=EXIT_CODES)
@_with_option_groups
def status(
    job_id: JobId,
    json_output: JsonOutput = False,
    *, connection: Connection,
) -> None:
    """Print a job's status: a table, or with --json the JSON summary. Exit 1 if it failed."""
    raise typer.Exit(_dispatch(connection.verbose, _cmd_status, connection, job_id, json_output))


@app.command(epilog=EXIT_CODES)
@_with_option_groups
def stop(
    job_id: JobId,
    stop_timeout: StopTimeout = 60.0,
    json_output: JsonOutput = False,
    *, connection: Connection,
) -> None:
    """Stop a job and confirm it stopped."""
    raise typer.Exit(_dispatch(connection.verbose, _cmd_stop, connection, job_id, stop_timeout,
                               json_output))


@app.command(epilog=EXIT_CODES)
@_with_option_groups
def logs(
    job_id: JobId,
    follow: Annotated[bool, typer.Option(
        "--follow", "-f", help="Stream until the job ends (never stops it).")] = False,
    *, connection: Connection, polling: Polling,
) -> None:
    """Print a job's output; --follow watches it to its end and never stops it."""
    raise typer.Exit(_dispatch(connection.verbose, _cmd_logs, connection, polling, job_id,
                               follow))


@app.command(
    add_help_option=False,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def sandbox(ctx: typer.Context) -> None:
    """Run a local Domino-compatible server (sandbox --help lists its options)."""
    from domino_orchestrate.sandbox.server import main as sandbox_main

    raise typer.Exit(int(sandbox_main(list(ctx.args)) or 0))


def lineage_flush(verbose: Verbose = 0) -> None:
    """Deliver spooled lineage events (OpenLineage, Databand, MLflow closes) now."""
    raise typer.Exit(_dispatch(verbose, _cmd_lineage_flush))


def _lineage_app() -> typer.Typer:
    """The lineage commands: the trace store's app (domino_orchestrate.trace.cli) with flush
    added; without it (not installed, or it cannot be imported) flush alone."""
    try:
        from domino_orchestrate.trace.cli import lineage_app
    except ImportError as exc:
        log.debug("Lineage store commands unavailable: %s", exc)
        lineage_app = typer.Typer(help="Lineage maintenance.", no_args_is_help=True)
    lineage_app.command("flush", epilog=EXIT_CODES)(lineage_flush)
    return lineage_app  # type: ignore[no-any-return]


app.add_typer(_lineage_app(), name="lineage")


# --- the commands' work --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RunRequest:
    """What run was asked to do, beyond how to connect and poll."""

    words: tuple[str, ...]
    v1: bool = False
    direct: bool = False
    title: str | None = None
    hardware_tier: str | None = None
    environment_id: str | None = None
    commit_id: str | None = None
    branch: str | None = None
    git_ref: Any = None
    spark: Any = None
    compute_cluster: Any = None
    volumes: tuple[str, ...] = ()
    idempotency_key: str | None = None
    no_wait: bool = False
    inputs: tuple[Any, ...] = ()
    outputs: tuple[Any, ...] = ()
    stop_timeout: float = 60.0
    json_output: bool = False


def _project(connection: Connection) -> str | None:
    if connection.project:
        return connection.project
    if os.environ.get("DOMINO_PROJECT"):
        return os.environ["DOMINO_PROJECT"]
    owner, name = os.environ.get("DOMINO_PROJECT_OWNER"), os.environ.get("DOMINO_PROJECT_NAME")
    return f"{owner}/{name}" if owner and name else None


def _client(connection: Connection) -> Any:
    from domino_orchestrate.core import DominoClient
    from domino_orchestrate.core.config import without_userinfo

    client = DominoClient(
        connection.host, _project(connection), api_key=connection.api_key,
        auth_token=connection.auth_token, domino_token_file=connection.token_file,
        api_proxy=connection.api_proxy, timeout=connection.timeout, verify=connection.ca_bundle,
    )
    apply_log_level(connection.verbose)  # the flags win over DOMINO_LOG_LEVEL, re-read by config
    config = client.config
    log.info("Domino %s, project %s, authentication: %s%s", without_userinfo(config.host),
             config.project or "(none)", config.credentials.kind,
             f", CA bundle {config.verify}" if isinstance(config.verify, str) else "")
    return client


def _poll_options(polling: Polling, **fields: Any) -> Any:
    from domino_orchestrate.core import PollOptions

    values = {
        **dataclasses.asdict(polling),
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


def _print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
    sys.stdout.flush()


def _job_spec(request: RunRequest, env: dict[str, str]) -> Any:
    """The v4 JobSpec (or v1 RunSpec) of ``request``; the command as written unless the user
    opted in to lineage env (``env`` is then exported in front of it, which needs a shell)."""
    from domino_orchestrate.core import JobSpec, RunSpec
    from domino_orchestrate.core.lineage import with_env_prefix

    command_line = _command_line(request.words)
    if request.v1:
        command: tuple[str, ...] = request.words
        if request.direct:
            command = (with_env_prefix(command_line, env) if env else command_line,)
        return RunSpec(command=command, is_direct=request.direct, commit_id=request.commit_id,
                       title=request.title, tier=request.hardware_tier)
    return JobSpec(
        command=with_env_prefix(command_line, env) if env else command_line,
        title=request.title, hardware_tier_name=request.hardware_tier,
        environment_id=request.environment_id, commit_id=request.commit_id,
        branch=request.branch, main_repo_git_ref=request.git_ref,
        on_demand_spark_cluster_properties=request.spark,
        compute_cluster_properties=request.compute_cluster,
        external_volume_mounts=list(request.volumes) or None,
    )


def _failure_reason(exc: BaseException) -> str:
    """Why a run failed, in one line for the session's lineage FAIL event (no output tail)."""
    from domino_orchestrate.core import JobFailedError

    if isinstance(exc, JobFailedError):
        return f"Domino job {exc.job_id} ended {exc.status.value}"
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


def _cmd_run(connection: Connection, polling: Polling, request: RunRequest) -> int:
    from domino_orchestrate.core import JobFailedError, idempotency_key
    from domino_orchestrate.core.lineage import (
        LineageInfo,
        cli_session_parent,
        finish_parent_run,
        lineage_env,
        lineage_observers,
    )

    client = _client(connection)
    key = request.idempotency_key or idempotency_key("cli", time.time_ns(), os.getpid())
    # This invocation is the OpenLineage parent run of its job: its START goes out with the
    # job's, its end below, so the job's parent facet never names an orphan.
    parent = cli_session_parent(client.config)
    info = LineageInfo(orchestrator="cli",
                       job_name=request.title or _command_line(request.words)[:80],
                       run_key=("cli", key), parent=parent, inputs=request.inputs,
                       outputs=request.outputs)
    spec = _job_spec(request, lineage_env(info, client.config))
    options = _poll_options(polling, stop_timeout=request.stop_timeout)
    observers: list[Any] = list(lineage_observers(info, client.config))
    # --json keeps stdout for the one JSON document: the job's output goes to stderr.
    out = sys.stderr if request.json_output else sys.stdout
    outcome, error = "ABORT", None
    try:
        with Console(out, sys.stderr) as console:
            observers.insert(0, console)
            try:
                start = client.start_run if request.v1 else client.start_job
                handle = start(spec, idempotency_key=key, observers=observers)
                if request.no_wait:
                    if request.json_output:
                        _print_json({"handle": handle.to_dict(), "final": None})
                    else:
                        print(handle.job_id)
                    outcome = "COMPLETE"
                    return EXIT_OK
                final = client.wait(handle, options, observers=observers)
            except (Interrupted, KeyboardInterrupt) as exc:
                # The client has already stopped the job (or what the interrupted start created)
                # and reported the outcome to the console; say how it ended, last.
                console.note(_interrupted_run(_signal_name(exc), console))
                error = f"interrupted by {_signal_name(exc)}"
                if request.json_output and console.final is not None:
                    _print_json({"handle": _handle_dict(console),
                                 "final": console.final.summary()})
                return handled_exit_code(exc)
            except JobFailedError as exc:
                if request.json_output:
                    _print_json({"handle": _handle_dict(console),
                                 "final": exc.snapshot.summary()})
                raise
            outcome = "COMPLETE"
            console.note(f"Domino {handle.kind} {final.job_id} {final.raw_status}",
                         style=status_style(final.raw_status or ""))
            if request.json_output:
                _print_json({"handle": handle.to_dict(), "final": final.summary()})
        return EXIT_OK
    except Exception as exc:
        outcome, error = "FAIL", _failure_reason(exc)
        raise
    finally:
        finish_parent_run(parent, outcome, orchestrator="cli", error=error)


def _handle_dict(console: Console) -> dict[str, Any] | None:
    """The started job's handle as JSON, from what the console saw (None before a start)."""
    handle = console.handle
    return None if handle is None else dict(handle.to_dict())


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


def _cmd_status(connection: Connection, job_id: str, json_output: bool) -> int:
    snapshot = _client(connection).get_job(job_id)
    summary = snapshot.summary()
    if json_output:
        _print_json(summary)
    else:
        _print_table(summary)
    return EXIT_OK if not snapshot.status.is_failure else EXIT_FAILED


def _print_table(summary: dict[str, Any]) -> None:
    """A job summary as two aligned columns, field and value. Every value comes from Domino, so
    each is made safe and given to rich as plain Text (never markup); long values (URLs) are
    never folded, so they stay copyable."""
    from rich.table import Table
    from rich.text import Text

    table = Table.grid(padding=(0, 2))
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", no_wrap=True, overflow="ignore")
    rows = [(name, safe_text("" if value is None else str(value))) for name, value in
            summary.items()]
    for name, shown in rows:
        table.add_row(name, Text(shown, style=status_style(shown) if name == "status" else ""))
    width = max(len(name) for name, _ in rows) + 2 + max(len(shown) for _, shown in rows)
    shown = render(table, sys.stdout, width=width)
    sys.stdout.write("".join(line.rstrip(" ") + "\n" for line in shown.splitlines()))


def _cmd_stop(connection: Connection, job_id: str, stop_timeout: float,
              json_output: bool) -> int:
    final = _client(connection).stop_job(job_id, timeout=stop_timeout)
    if json_output:
        _print_json({"job_id": job_id, "final": final.summary() if final else None})
    else:
        print(safe_text(f"{job_id} {final.raw_status if final else 'stop requested'}"))
    return EXIT_OK


def _cmd_logs(connection: Connection, polling: Polling, job_id: str, follow: bool) -> int:
    from domino_orchestrate.core import JobHandle

    client = _client(connection)
    if not follow:
        for line in client.stdout(job_id, include_setup_log=polling.include_setup_log):
            stream = sys.stderr if line.stream == "stderr" else sys.stdout
            stream.write(safe_text(line.text) + "\n")
        return EXIT_OK
    # Watching never stops a job: neither an interrupt nor --max-poll-time stops it. A person
    # following a log wants it as it grows (tail -f), not within the request budget.
    options = _poll_options(polling, stop_on_timeout=False, stop_on_interrupt=False,
                            log_interval=polling.log_interval or polling.poll_freq)
    with Console(sys.stdout, sys.stderr) as console:
        console.job_id = safe_text(job_id)
        try:
            client.wait(JobHandle(job_id), options, observers=[console])
        except (Interrupted, KeyboardInterrupt) as exc:
            console.note(f"interrupted by {_signal_name(exc)}: stopped following Domino job "
                         f"{job_id}; it keeps running (domino-orchestrate stop "
                         f"{job_id} stops it)")
            return handled_exit_code(exc)
    return EXIT_OK


def _cmd_lineage_flush() -> int:
    from domino_orchestrate.core.lineage import flush_spool

    delivered, remaining = flush_spool()
    print(f"delivered {delivered} spooled lineage event(s); {remaining} remaining")
    return EXIT_OK if remaining == 0 else EXIT_API


# --- errors, signals, the entry point ------------------------------------------------------------


def _error(message: object) -> None:
    """One line on stderr, "error: …" (the word in red on a terminal)."""
    from rich.text import Text

    line = render(Text.assemble(("error:", "red"), " ", one_line(str(message))), sys.stderr,
                  soft_wrap=True)
    with contextlib.suppress(OSError):  # stderr gone (a closed terminal): the exit code tells
        sys.stderr.write(line)
        sys.stderr.flush()


def _repeat_signal_message(signum: int) -> str:
    return ("domino-orchestrate: already ending (stopping the job, if this command owns one); "
            "the stop is bounded by --stop-timeout")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: the process's arguments); return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "sandbox":
        from domino_orchestrate.sandbox.server import main as sandbox_main

        return int(sandbox_main(argv[1:]) or 0)
    robust_streams()
    log_to_stderr()
    try:
        with SignalGuard(_repeat_signal_message):
            app(args=argv, prog_name=PROG)
        return EXIT_OK  # typer exits; not reached
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None
                                                           else EXIT_USAGE)
    except (Interrupted, KeyboardInterrupt) as exc:
        # A signal outside a job's wait (status, stop, logs, a start being set up).
        _error(f"interrupted by {_signal_name(exc)}")
        return handled_exit_code(exc)
    finally:
        release_streams()


def _dispatch(verbose: int, handler: Any, *args: Any) -> int:
    """Run one command's work; map what can go wrong to one error line and its exit code."""
    from domino_orchestrate.core import (
        ConfigurationError,
        DominoError,
        JobFailedError,
        PollTimeoutError,
        StopNotConfirmedError,
    )

    try:
        apply_log_level(verbose)
        return int(handler(*args))
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
