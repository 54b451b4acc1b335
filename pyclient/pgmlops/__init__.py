"""pgmlops: MLOps inside PostgreSQL. ``import pgmlops`` does nothing; ``pgmlops.connect()``
opens a client; ``pgmlops.install()`` installs the SQL API over a connection."""

from .client import Client, connect
from .errors import InstallError, PgmlopsError, ServerError
from .install import install

__all__ = ["Client", "InstallError", "PgmlopsError", "ServerError", "connect", "install"]
