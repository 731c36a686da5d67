"""``LazyDominoHook``: the ``hook`` property operators and sensors share.

The hook (and with it the core client) is built on first use, never while a DAG file is parsed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .hooks import DominoHook

__all__ = ["LazyDominoHook"]


class LazyDominoHook:
    """Mixin for operators and sensors: ``hook``, a ``DominoHook`` for ``domino_conn_id`` and
    ``project``, built on first use."""

    domino_conn_id: str
    project: str | None

    @property
    def hook(self) -> DominoHook:
        """The ``DominoHook`` of this task's connection and project (built once, on first use)."""
        hook = self.__dict__.get("_domino_hook")
        if hook is None:
            from .hooks import DominoHook

            hook = DominoHook(self.domino_conn_id, project=self.project)
            self.__dict__["_domino_hook"] = hook
        return hook
