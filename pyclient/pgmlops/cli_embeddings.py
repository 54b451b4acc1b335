"""``pgmlops embed-worker``: drains embedding sync queues (registered in cli.py)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from .errors import PgmlopsError


def embed_worker(
    dsn: Annotated[str | None, typer.Option("--dsn", help="Database URL (default: PGMLOPS_DSN, DATABASE_URL, "
                                                          "then the local cluster).")] = None,
    sync: Annotated[str | None, typer.Option(help="Only this sync (default: every sync).")] = None,
    batch_size: Annotated[int, typer.Option(help="Rows claimed per transaction.")] = 32,
    once: Annotated[bool, typer.Option("--once/--forever", help="Stop when the queue is empty (default) or "
                                                               "keep polling.")] = True,
    poll: Annotated[float, typer.Option(help="Seconds between polls when idle (--forever).")] = 1.0,
) -> None:
    """Embed queued rows of embedding syncs (FOR UPDATE SKIP LOCKED; run several in parallel).

    Example: pgmlops embed-worker --sync docs --batch-size 64
    """
    import psycopg

    from .client import connect

    err = Console(stderr=True, soft_wrap=True)
    try:
        with connect(dsn) as client:
            n = client.embeddings.work(sync=sync, batch_size=batch_size, until_empty=once, poll_seconds=poll)
    except (PgmlopsError, psycopg.Error) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        err.print(f"[red]error:[/red] {message}", highlight=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    Console().print(f"embedded {n} rows")
