"""A/B experiments: assignment, routing, analysis, conclusion (wraps mlops.* SQL)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import Client


class Experiments:
    """``client.experiments``"""

    def __init__(self, client: Client) -> None:
        self.client = client
