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
#        FLOORS_PIN   requirements to force in every venv, FLOORS_PIN_airflow (_prefect,
#                     _dagster) in one (e.g. "apache-airflow==3.2.0"): to try candidate floors
#                     before declaring them in pyproject.toml
#        FLOORS_TESTS override the pytest arguments of one run (default: per orchestrator below)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
UV=${UV:-$ROOT/.venv/bin/uv}
PY=${FLOORS_PYTHON:-python3}
WORK=${FLOORS_DIR:-$(mktemp -d -t domino-floors-XXXXXX)}
[ -n "${FLOORS_DIR:-}" ] || trap 'rm -rf "$WORK"' EXIT

# Test tools: resolved after the floors, around them (they are not what we prove). dagster-pipes
# is what the sandbox's jobs import to report messages (the in-job side, not an orchestrator).
TEST_TOOLS=("pytest>=8" "pytest-asyncio>=0.24" pytest-mock pytest-timeout pytest-xdist jsonschema
            psutil hypothesis dagster-pipes)

# What runs against the floors: each orchestrator's in-process layer, narrowed to fit CI's budget
# (the whole layer runs on the pinned versions in the main suite). Every API we import is still
# exercised: operators/sensor/trigger/hook/provider and durable execution (Airflow), blocks,
# dispatch, cancellation by signal and timeouts (Prefect), resource, assets, Pipes, re-execution
# (Dagster). Import-cost tests are left out (timing, not compatibility).
declare -A TESTS=(
  [airflow]="tests/airflow/test_provider.py
    tests/airflow/test_lifecycle.py::test_clear_generation_follows_max_tries_not_the_try_number
    tests/airflow/test_lifecycle.py::test_a_recorded_job_is_reused_only_under_the_core_rule
    tests/airflow/test_operators.py::test_outcomes_success_failed_error_run_and_templates
    tests/airflow/test_operators.py::test_on_kill_stops_the_running_job
    tests/airflow/test_operators.py::test_retry_after_a_crash_attaches_to_the_same_job[task_state_store]
    tests/airflow/test_operators.py::test_lineage_info_uses_airflow_openlineage_ids
    tests/airflow/test_triggers_sensors.py::test_trigger_serialize_round_trips_with_primitives_only
    tests/airflow/test_triggers_sensors.py::test_trigger_yields_success_and_failed_events
    --deselect tests/airflow/test_provider.py::test_importing_the_package_is_cheap"
  # The SIGTERM-of-the-flow-process tests hit a known window (a signal between the start task
  # and the wait leaves the job running) far more often on a runner shared by three test layers.
  [prefect]="tests/prefect
    --deselect tests/prefect/test_example.py::test_import_is_cheap
    --deselect tests/prefect/test_kill_retry.py::test_sigterm_of_flow_process_stops_job"
  [dagster]="tests/dagster"
)

run_one() {
  local extra=$1 venv="$WORK/$1" start=$SECONDS world pins_var="FLOORS_PIN_$1" pins
  pins="${FLOORS_PIN:-} ${!pins_var:-}"
  echo "=== floors: $extra (venv $venv)"
  "$UV" venv -q --python "$PY" "$venv"
  # The index as of the orchestrator floor's release (see ci/floors_world.py for why).
  # shellcheck disable=SC2086
  world=$("$PY" ci/floors_world.py "$extra" $pins)
  echo "resolving as of: $world"
  # The sandbox extra is what the tests serve Domino with; lineage is part of every integration.
  # Our requirements are passed as direct ones too: lowest-direct lowers only direct requirements,
  # and those of a wheel would count as transitive.
  "$PY" ci/floors_world.py --requirements "$extra" > "$WORK/$extra-requirements.txt"
  # shellcheck disable=SC2086
  "$UV" pip install -q --python "$venv/bin/python" --resolution lowest-direct $world \
    -r "$WORK/$extra-requirements.txt" "domino-orchestrate[$extra,sandbox,lineage] @ file://$WHEEL" $pins
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
done
# The orchestrators run side by side (CI has two cores; most of a run is waiting on jobs and
# servers); each one's output is printed whole when it ends.
declare -A PIDS=()
for extra in "${targets[@]}"; do
  run_one "$extra" > "$WORK/$extra.log" 2>&1 &
  PIDS[$extra]=$!
done
failed=()
for extra in "${targets[@]}"; do
  if wait "${PIDS[$extra]}"; then status=passed; else status=FAILED; failed+=("$extra"); fi
  echo "::group::floors $extra ($status)"; cat "$WORK/$extra.log"; echo "::endgroup::"
done
echo "floors: ${#targets[@]} orchestrator(s) in $SECONDS s; failed: ${failed[*]:-none}"
[ ${#failed[@]} -eq 0 ]
