"""Exceptions raised by the pgmlops client (SQL errors keep psycopg's own types)."""


class PgmlopsError(Exception):
    """A pgmlops operation failed; the message says which argument or state is wrong."""


class InstallError(PgmlopsError):
    """Installing or upgrading pgmlops failed; nothing was changed."""


class ServerError(PgmlopsError):
    """The local embedded PostgreSQL cluster could not be managed."""
