"""Imported first by the package: without the ``prefect`` extra, one clear error naming it."""

from domino_orchestrate.core.extras import require_extra

require_extra("prefect", "domino_orchestrate.prefect")
