"""``pgmlops embed-worker``: drains embedding sync queues (registered in cli.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from .cli_common import DsnOption, JsonOption, fails_cleanly, report_done


@fails_cleanly
def embed_worker(
    dsn: DsnOption = None,
    sync: Annotated[str | None, typer.Option(help="Only this sync (default: every sync).")] = None,
    batch_size: Annotated[int, typer.Option(help="Rows claimed per transaction.")] = 32,
    once: Annotated[bool, typer.Option("--once/--forever", help="Stop when the queue is empty (default) or "
                                                               "keep polling.")] = True,
    poll: Annotated[float, typer.Option(help="Seconds between polls when idle (--forever).")] = 1.0,
    as_json: JsonOption = False,
) -> None:
    """Embed queued rows of embedding syncs (FOR UPDATE SKIP LOCKED; run several in parallel).

    Example: pgmlops embed-worker --sync docs --batch-size 64
    """
    from .client import connect

    try:
        with connect(dsn) as client:
            n = client.embeddings.work(sync=sync, batch_size=batch_size, until_empty=once, poll_seconds=poll)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    report_done(f"embedded {n} rows", {"embedded": n}, as_json)
