"""Prediction logging, feedback and monitoring (wraps mlops.* SQL)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import Client


class Predictions:
    """``client.predictions``"""

    def __init__(self, client: Client) -> None:
        self.client = client
