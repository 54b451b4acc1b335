"""Model registry: models, versions, aliases, policies, training jobs (wraps mlops.* SQL)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import Client


class Registry:
    """``client.registry``"""

    def __init__(self, client: Client) -> None:
        self.client = client
