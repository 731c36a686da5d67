"""A ``--store`` path holding a file that is not a SQLite database (a typo'd path to a CSV, an
events file given where the store was meant): one typed ``StoreConfigError`` naming the path and
what to do, exit code 2 from the real CLI, no traceback, and the user's file left as it was.
Before, SQLite's ``file is not a database`` (raised by the store's ``PRAGMA journal_mode=WAL`` on
connect) escaped as a raw ``sqlalchemy.exc.DatabaseError`` traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from domino_orchestrate.trace import LineageStore, StoreConfigError
from domino_orchestrate.trace.errors import EXIT_CONFIG

ENTRY_POINT = Path(sys.executable).with_name("domino-orchestrate")
NOT_A_DATABASE = {
    "text": b"run_id,component,status\n" + b"r1,train,COMPLETE\n" * 200,
    "gzip": b"\x1f\x8b\x08\x00" + bytes(range(256)) * 8,
}


@pytest.mark.parametrize("content", list(NOT_A_DATABASE.values()), ids=list(NOT_A_DATABASE))
def test_a_file_that_is_not_a_database_is_a_store_config_error(tmp_path: Path,
                                                               content: bytes) -> None:
    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / "runs.csv"
    path.write_bytes(content)
    with pytest.raises(StoreConfigError) as caught:
        LineageStore(path)
    message = str(caught.value)
    assert str(path) in message and "not a SQLite database" in message, message
    assert "file is not a database" in message  # SQLite's own words, for a search
    assert caught.value.exit_code == EXIT_CONFIG
    assert path.read_bytes() == content  # never "repaired" into a store
    assert [p.name for p in path.parent.iterdir()] == ["runs.csv"]  # no -wal/-shm beside it


def test_the_cli_says_so_in_one_line_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "lineage.jsonl"
    path.write_text('{"eventType": "START"}\n' * 100)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOMINO_", "OPENLINEAGE"))}
    env.update(NO_COLOR="1", COLUMNS="200")
    done = subprocess.run([str(ENTRY_POINT), "lineage", "recent", "--store", str(path)],
                          env=env, cwd=tmp_path, text=True, capture_output=True, timeout=120)
    assert done.returncode == EXIT_CONFIG, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr and "DatabaseError" not in done.stderr, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("error: lineage store ") and "not a SQLite database" in line, line
    assert done.stdout == ""


def test_an_empty_file_is_a_new_store(tmp_path: Path) -> None:
    """SQLite takes an empty file for a new database: the check refuses only real content."""
    path = tmp_path / "touched.db"
    path.touch()
    with LineageStore(path) as store:
        assert store.recent() == []
