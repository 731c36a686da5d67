"""The Airflow helpers of ``tests/airflow/conftest.py`` (``af``, the per-worker metadata DB), for
the compat operator tests: loaded from that file, since conftest modules cannot be imported."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "_airflow_test_helpers", Path(__file__).resolve().parents[1] / "airflow" / "conftest.py")
assert _spec is not None and _spec.loader is not None
_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_helpers)

af = _helpers.af
_db = _helpers._db  # autouse: the migrated metadata DB
