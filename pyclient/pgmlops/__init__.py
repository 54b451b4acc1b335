"""pgmlops: MLOps inside PostgreSQL. ``import pgmlops`` does nothing; ``pgmlops.connect()``
opens a client, ``pgmlops.connect_pool()`` a pool of them for servers; ``pgmlops.install()``
installs the SQL API over a connection."""

from .client import Client, connect
from .errors import InstallError, PgmlopsError, ServerError
from .install import install
from .pool import ClientPool, connect_pool

__all__ = ["Client", "ClientPool", "InstallError", "PgmlopsError", "ServerError", "connect", "connect_pool",
           "install"]
