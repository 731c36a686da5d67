"""Benchmark: a job that prints ~100 MB of stdout over its life (10 chunks of ~10 MB, 1.5 s apart).

Both clients run in their own fresh subprocess, one after the other, against one sandbox (a
separate process), each in its own project, with the sandbox's stats reset before each:

* ours: ``DominoClient.run_job(..., PollOptions(poll_freq=5), on_line=...)`` in a subprocess of
  our venv; the callback only feeds a running sha256 of the lines joined with "\\n" (no lines are
  kept, so the figure is the client's memory, not the consumer's);
* official: ``job_start_blocking(command=..., poll_freq=5)`` in its own venv; it fetches stdout
  once at the end and logs every line (stderr goes to a temp file). A logging handler on its
  ``process_log`` records hashes the lines it logged, the same way.

Peak memory is each subprocess's ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` printed at the
end (baseline = VmRSS after imports, before the job). Bytes fetched = the sandbox's response-body
bytes (``stats()["bytes_sent"]``) during that client's run. Correctness: sha256 of the delivered
lines joined with "\\n" versus the job's raw stdout from ``GET /__sandbox__/executions/{id}/output
?stream=stdout`` (with its one trailing newline removed). Lines contain ``<b>&amp; "q" 'a' é →``
so HTML escaping and UTF-8 are exercised.

    .venv/bin/python benchmarks/large_stdout.py [--mb 100] [--chunks 10]
"""

from __future__ import annotations

import argparse
import hashlib
import shlex
import sys
from typing import Any

from _bench import official_env, official_python, our_python, raw_output, request_count, run_script
from _common import report

from domino_orchestrate.sandbox import SandboxProcess

LINE_BYTES = 1000

JOB = """
import sys, time
chunks, per_chunk, pause = {chunks}, {per_chunk}, {pause}
pad = "x" * {pad}
for c in range(chunks):
    sys.stdout.write("".join(f"{{c:02d}}:{{i:06d}} <b>&amp; \\"q\\" 'a' é → {{pad}}\\n" for i in range(per_chunk)))
    sys.stdout.flush()
    if c < chunks - 1:
        time.sleep(pause)
"""

PREAMBLE = """
import hashlib, json, os, resource, sys, time

def rss_kb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

class Hasher:
    # sha: every delivered line; sha_nonempty: the same with empty lines left out.
    def __init__(self):
        self.sha, self.sha_nonempty = hashlib.sha256(), hashlib.sha256()
        self.lines = self.nonempty = 0
    def add(self, text):
        self.sha.update((("\\n" if self.lines else "") + text).encode())
        self.lines += 1
        if text:
            self.sha_nonempty.update((("\\n" if self.nonempty else "") + text).encode())
            self.nonempty += 1
"""

OURS = PREAMBLE + """
from domino_orchestrate.core import DominoClient, PollOptions
hasher, other = Hasher(), []
def on_line(line):
    if line.stream == "stdout":
        hasher.add(line.text)
    else:
        other.append(line.stream)
baseline = rss_kb()
started = time.monotonic()
with DominoClient(os.environ["DOMINO_API_HOST"], os.environ["BENCH_PROJECT"],
                  api_key=os.environ["DOMINO_USER_API_KEY"]) as client:
    final = client.run_job(sys.argv[1], PollOptions(poll_freq=5), on_line=on_line)
wall = time.monotonic() - started
print(json.dumps({"job_id": final.job_id, "status": final.raw_status, "wall_s": wall,
                  "baseline_rss_kb": baseline,
                  "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "sha256": hasher.sha.hexdigest(), "lines": hasher.lines,
                  "sha256_nonempty": hasher.sha_nonempty.hexdigest(),
                  "other_stream_lines": len(other)}))
"""

OFFICIAL = PREAMBLE + """
import logging
from domino import Domino
hasher = Hasher()
class Capture(logging.Handler):
    def emit(self, record):
        if record.funcName == "process_log":
            hasher.add(record.getMessage())
baseline = rss_kb()
started = time.monotonic()
client = Domino(os.environ["BENCH_PROJECT"])
logging.getLogger("domino.domino").addHandler(Capture())
final = client.job_start_blocking(command=sys.argv[1], poll_freq=5)
wall = time.monotonic() - started
print(json.dumps({"job_id": final["id"], "status": final["statuses"]["executionStatus"],
                  "wall_s": wall, "baseline_rss_kb": baseline,
                  "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "sha256": hasher.sha.hexdigest(), "lines": hasher.lines,
                  "sha256_nonempty": hasher.sha_nonempty.hexdigest(),
                  "other_stream_lines": 0}))
"""


def job_command(mb: int, chunks: int, pause: float) -> str:
    per_chunk = mb * 1_000_000 // LINE_BYTES // chunks
    # Line: "cc:iiiiii " (10 bytes) + the marker (24 bytes in UTF-8) + pad + "\n" = LINE_BYTES.
    code = JOB.format(chunks=chunks, per_chunk=per_chunk, pause=pause, pad=LINE_BYTES - 35)
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


def expected_sha(raw: bytes) -> tuple[str, int]:
    text = raw[:-1] if raw.endswith(b"\n") else raw
    return hashlib.sha256(text).hexdigest(), raw.count(b"\n")


def measure(sb: SandboxProcess, client: str, python: str, project: str,
            command: str) -> dict[str, Any]:
    env = {**official_env(sb.url, sb.api_key), "BENCH_PROJECT": project}
    sb.reset_stats()
    out, _ = run_script(python, OURS if client == "ours" else OFFICIAL, [command], env)
    stats = sb.stats()
    raw = raw_output(sb.url, str(out["job_id"]))
    sha, lines = expected_sha(raw)
    identical = out["sha256"] == sha and not out["other_stream_lines"]
    note = ""
    if not identical and out["sha256_nonempty"] == sha:
        extra = out["lines"] - lines
        note = (f"{extra} extra empty line(s) delivered (the closing </pre> line is logged as an "
                "empty line); all other lines identical")
    elif not identical:
        note = "content differs from the job's stdout"
    return {
        "client": client,
        "job_stdout_mb": len(raw) / 1e6,
        "status": out["status"],
        "wall_s": out["wall_s"],
        "baseline_rss_mb": out["baseline_rss_kb"] / 1024,
        "peak_rss_mb": out["peak_rss_kb"] / 1024,
        "peak_minus_baseline_mb": (out["peak_rss_kb"] - out["baseline_rss_kb"]) / 1024,
        "bytes_fetched_mb": stats["bytes_sent"] / 1e6,
        "stdout_fetches": request_count(stats, "/stdout"),
        "requests": request_count(stats),
        "lines_delivered": out["lines"],
        "lines_in_job": lines,
        "identical_to_job_stdout": identical,
        "note": note,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--chunks", type=int, default=10)
    parser.add_argument("--pause", type=float, default=1.5)
    args = parser.parse_args()
    command = job_command(args.mb, args.chunks, args.pause)
    official = official_python()
    plan = [("ours", our_python())] + ([("official", official)] if official else [])
    if not official:
        print("official client venv not found (DOMINO_OFFICIAL_PYTHON): measuring ours only")
    rows = []
    with SandboxProcess(projects={"bench/ours": None, "bench/official": None}) as sb:
        for client, python in plan:
            rows.append(measure(sb, client, python, f"bench/{client}", command))
            print(f"  {client}: done in {rows[-1]['wall_s']:.1f} s", flush=True)
    report("large_stdout", rows)


if __name__ == "__main__":
    main()
