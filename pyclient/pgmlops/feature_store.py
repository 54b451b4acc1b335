"""Feature store: entities, feature groups, online lookup, training sets (wraps mlops.* SQL)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import Client


class FeatureStore:
    """``client.features``"""

    def __init__(self, client: Client) -> None:
        self.client = client
