"""Every ``DOMINO_*`` variable is on the environment page (issue 17: "7 of the 21 ``DOMINO_*``
variables documented"), including those the code names without quotes: the variables the
sandbox sets in its jobs as Domino does (``DOMINO_RUN_NUMBER=...`` keyword arguments), which
``tests/test_docs.py``'s scan of quoted names does not see."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_domino_variable_named_in_the_code_is_documented() -> None:
    named: set[str] = set()
    for folder in ("core", "integrations", "src", "sandbox"):
        for path in (ROOT / folder).rglob("*.py"):
            named.update(re.findall(r"\b(DOMINO_[A-Z0-9_]*[A-Z0-9])\b", path.read_text()))
    named.discard("DOMINO_ORCHESTRATE")  # a tag value (the lineage source), not a variable
    assert len(named) >= 25, sorted(named)  # the scan itself works
    documented = set(re.findall(r"`(DOMINO_[A-Z0-9_]+)`",
                                (ROOT / "docs" / "environment.md").read_text()))
    assert sorted(named - documented) == []
