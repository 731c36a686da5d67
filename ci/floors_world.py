"""Print the uv flags that resolve an orchestrator's floor environment "as of its release".

Usage: python ci/floors_world.py EXTRA [name==version ...]

An old Airflow, Prefect or Dagster installed with today's FastAPI, pydantic or cadwyn breaks
whatever our floor is (Airflow users install with the constraints of their release; others have
lock files from then). So the floors venv resolves from the index as it was a week after the
orchestrator's floor release (``--exclude-newer``), except for our other floors released later
(``--exclude-newer-package``, e.g. a providers-common-compat that arrived after Airflow 3.2.0).
The floors are read from pyproject.toml (``>=`` bounds), overridden by ``name==version``
arguments; release dates come from PyPI's JSON simple API (PEP 700 ``upload-time``).
"""

from __future__ import annotations

import json
import re
import sys
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
ANCHOR = {"airflow": "apache-airflow", "prefect": "prefect", "dagster": "dagster"}
SETTLE = timedelta(days=7)  # a release's own fixes and its deps' compatible releases


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_requirements(extra: str) -> list[str]:
    """Our own requirements for ``extra`` (with the sandbox and lineage extras the tests use)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for name in (extra, "sandbox", "lineage"):
        reqs += [r for r in project["optional-dependencies"][name]
                 if not r.startswith("domino-orchestrate")]
    return reqs


def declared_floors(extra: str) -> dict[str, str]:
    reqs = declared_requirements(extra)
    floors = {}
    for req in reqs:
        match = re.match(r"([A-Za-z0-9_.-]+)(?:\[[^]]*\])?\s*[^;]*?>=\s*([0-9][^,;\s]*)", req)
        if match:
            floors[norm(match.group(1))] = match.group(2)
    return floors


def _numbers(version: str) -> tuple[int, ...] | None:
    """(3, 2, 0) for "3.2.0"; None for pre-releases and other spellings (never a floor)."""
    if not re.fullmatch(r"\d+(\.\d+)*", version):
        return None
    parts = tuple(int(p) for p in version.split("."))
    return parts + (0,) * (4 - len(parts))


def released(name: str, version: str) -> datetime:
    """When the lowest release satisfying ``>= version`` was uploaded (what lowest-direct picks)."""
    request = urllib.request.Request(f"https://pypi.org/simple/{name}/",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        files = json.load(answer)["files"]
    floor = _numbers(version)
    uploads: dict[tuple[int, ...], str] = {}
    for file in files:
        match = re.match(r"[A-Za-z0-9_.]+?-(\d[^-]*?)(?:-|\.tar\.gz$|\.zip$)", file["filename"])
        numbers = _numbers(match.group(1)) if match else None
        if numbers is not None and floor is not None and numbers >= floor and file.get("upload-time"):
            uploads[numbers] = min(uploads.get(numbers, file["upload-time"]), file["upload-time"])
    if not uploads:
        raise SystemExit(f"floors: no release of {name} >= {version} on PyPI")
    return datetime.fromisoformat(uploads[min(uploads)].replace("Z", "+00:00"))


def main(extra: str, pins: list[str]) -> None:
    floors = declared_floors(extra)
    for pin in pins:
        name, _, version = pin.partition("==")
        floors[norm(name)] = version
    anchor = ANCHOR[extra]
    world = released(anchor, floors[anchor]) + SETTLE
    flags = ["--exclude-newer", world.strftime("%Y-%m-%dT%H:%M:%SZ")]
    for name, version in sorted(floors.items()):
        if name == anchor:
            continue
        when = released(name, version)
        if when > world:  # our floor is newer than the orchestrator's world: let it in
            flags += ["--exclude-newer-package",
                      f"{name}={(when + timedelta(days=1)).strftime('%Y-%m-%dT%H:%M:%SZ')}"]
    print(" ".join(flags))


if __name__ == "__main__":
    if sys.argv[1] == "--requirements":  # our requirements, to install as direct ones
        print("\n".join(declared_requirements(sys.argv[2])))
    else:
        main(sys.argv[1], sys.argv[2:])
