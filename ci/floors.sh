#!/usr/bin/env bash
# Floors job: proves the lowest versions pyproject.toml declares really work.
#
# For each orchestrator, a throwaway venv gets this project with that orchestrator's extra resolved
# with `uv --resolution lowest-direct` (so every direct requirement -- the orchestrator, its
# providers, requests/httpx/typer/... -- sits at its declared floor), from the index as it was when
# that orchestrator floor was released (ci/floors_world.py), then runs that orchestrator's
# in-process test layer. A floor that is too low fails here, not on a user's DAG parse.
#
# Usage: ci/floors.sh [airflow|prefect|dagster ...]   (default: all three)
# Env:   FLOORS_DIR   where the venvs go (default: a temp dir, removed at exit)
#        FLOORS_PIN   extra requirements to force (e.g. "apache-airflow==3.2.0") for trying
#                     candidate floors before declaring them
#        FLOORS_TESTS override the pytest arguments of one run (default: per orchestrator below)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
UV=${UV:-$ROOT/.venv/bin/uv}
PY=${FLOORS_PYTHON:-python3}
WORK=${FLOORS_DIR:-$(mktemp -d -t domino-floors-XXXXXX)}
[ -n "${FLOORS_DIR:-}" ] || trap 'rm -rf "$WORK"' EXIT

# Test tools: resolved after the floors, around them (they are not what we prove).
TEST_TOOLS=("pytest>=8" "pytest-asyncio>=0.24" pytest-mock pytest-timeout pytest-xdist jsonschema
            psutil hypothesis)

declare -A TESTS=(
  [airflow]="tests/airflow"
  [prefect]="tests/prefect"
  [dagster]="tests/dagster"
)

run_one() {
  local extra=$1 venv="$WORK/$1" start=$SECONDS world
  echo "=== floors: $extra (venv $venv)"
  "$UV" venv -q --python "$PY" "$venv"
  # The index as of the orchestrator floor's release (see ci/floors_world.py for why).
  # shellcheck disable=SC2086
  world=$("$PY" ci/floors_world.py "$extra" ${FLOORS_PIN:-})
  echo "resolving as of: $world"
  # The sandbox extra is what the tests serve Domino with; lineage is part of every integration.
  # shellcheck disable=SC2086
  "$UV" pip install -q --python "$venv/bin/python" --resolution lowest-direct $world \
    "domino-orchestrate[$extra,sandbox,lineage] @ file://$WHEEL" ${FLOORS_PIN:-}
  "$UV" pip freeze -q --python "$venv/bin/python" | grep -v "^domino-orchestrate" > "$WORK/$extra-floors.txt"
  "$UV" pip install -q --python "$venv/bin/python" -c "$WORK/$extra-floors.txt" "${TEST_TOOLS[@]}"
  grep -iE "^(apache-airflow|apache-airflow-providers-common-compat|apache-airflow-providers-openlineage|apache-airflow-task-sdk|prefect|dagster|dagster-pipes|openlineage-python|requests|httpx|tenacity|typer|rich|starlette|uvicorn|pydantic|fastapi)==" \
    "$WORK/$extra-floors.txt" | tr '\n' ' '; echo
  # shellcheck disable=SC2086
  (cd "$ROOT" && "$venv/bin/python" -m pytest -n0 -q -p no:randomly ${FLOORS_TESTS:-${TESTS[$extra]}})
  echo "=== floors: $extra passed in $((SECONDS - start)) s"
}

# Our wheel, built once with today's build tools (the floors are about what it runs with).
"$UV" build -q --wheel --out-dir "$WORK/dist" "$ROOT"
WHEEL=$(ls "$WORK"/dist/domino_orchestrate-*.whl)

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(airflow prefect dagster)
for extra in "${targets[@]}"; do
  [ -n "${TESTS[$extra]:-}" ] || { echo "unknown orchestrator: $extra (airflow, prefect or dagster)" >&2; exit 2; }
  run_one "$extra"
done
