"""Embeddings: generation, cache, sync, semantic search and dedupe (wraps mlops.* SQL)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import Client


class Embeddings:
    """``client.embeddings``"""

    def __init__(self, client: Client) -> None:
        self.client = client
