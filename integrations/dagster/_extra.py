"""Imported first by the package: without the ``dagster`` extra, one clear error naming it."""

from domino_orchestrate.core.extras import require_extra

require_extra("dagster", "domino_orchestrate.dagster")
