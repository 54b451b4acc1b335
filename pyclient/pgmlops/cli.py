"""The ``pgmlops`` command line (typer + rich). Every command takes --dsn (or PGMLOPS_DSN /
DATABASE_URL; otherwise the local cluster) and --json where it prints results; failures
exit non-zero with a one-line message."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from .cli_common import DsnOption, JsonOption, console, err_console, fails_cleanly, print_mapping, report_done
from .cli_embeddings import embed_worker
from .cli_report import drift_app, report_app
from .errors import PgmlopsError

app = typer.Typer(help="pgmlops: MLOps inside PostgreSQL.", no_args_is_help=True, add_completion=False)
server_app = typer.Typer(help="Manage the local embedded cluster under $PGMLOPS_HOME (default ./.pgmlops).",
                         no_args_is_help=True)
app.add_typer(server_app, name="server")
@server_app.command("start")
@fails_cleanly
def server_start(install: Annotated[bool, typer.Option(help="Install pgmlops into the database.")] = True,
                 as_json: JsonOption = False) -> None:
    """Start (initializing on first use) the local cluster.  Example: pgmlops server start"""
    from .install import install as do_install
    from .install import installed_version, latest_version
    from .server import local_server

    server = local_server()
    server.start()
    if install:
        import psycopg

        with psycopg.connect(server.url(), autocommit=True) as conn:
            if installed_version(conn) != latest_version():
                do_install(conn)
    report_done(f"local cluster running: {server.url()}", {"running": True, "url": server.url()}, as_json)


@server_app.command("stop")
@fails_cleanly
def server_stop(as_json: JsonOption = False) -> None:
    """Stop the local cluster.  Example: pgmlops server stop"""
    from .server import local_server

    local_server().stop()
    report_done("local cluster stopped", {"running": False}, as_json)


@server_app.command("status")
@fails_cleanly
def server_status(as_json: JsonOption = False) -> None:
    """Show whether the local cluster runs.  Example: pgmlops server status --json"""
    from .server import local_server

    server = local_server()
    running = server.running()
    print_mapping("local cluster", {"home": str(server.home), "running": running,
                                    "url": server.url() if server.initialized() else None}, as_json)
    if not running:
        raise typer.Exit(3)


@server_app.command("url")
@fails_cleanly
def server_url() -> None:
    """Print the local cluster's connection URL.  Example: psql "$(pgmlops server url)" """
    from .server import local_server

    server = local_server()
    if not server.initialized():
        raise PgmlopsError("the local cluster is not initialized: run `pgmlops server start`")
    sys.stdout.write(server.url() + "\n")


@app.command("install")
@fails_cleanly
def install_cmd(dsn: DsnOption = None,
                version: Annotated[str | None, typer.Option(help="Version to install (default: latest).")] = None,
                python: Annotated[bool | None, typer.Option("--python/--no-python",
                                                            help="Also install pgmlops_python (default: when "
                                                                 "plpython3u is available).")] = None,
                as_json: JsonOption = False) -> None:
    """Install or upgrade pgmlops with the bundled SQL (no server file access needed).

    Example: pgmlops install --dsn postgresql://admin@db/app --no-python
    """
    from .client import resolve_dsn
    from .install import install

    installed = install(resolve_dsn(dsn), version=version, python=python)
    report_done(f"pgmlops {installed} installed", {"installed": installed}, as_json)


@app.command("info")
@fails_cleanly
def info_cmd(dsn: DsnOption = None, as_json: JsonOption = False) -> None:
    """Print versions of pgmlops, pgvector, PostgreSQL and PL/Python.  Example: pgmlops info --json"""
    from .client import connect

    with connect(dsn) as client:
        print_mapping("mlops.info()", client.info(), as_json)




@app.command("demo")
@fails_cleanly
def demo_cmd(dsn: DsnOption = None,
             reset: Annotated[bool, typer.Option(help="Wipe pgmlops data in the database first.")] = False,
             customers: Annotated[int, typer.Option(help="Synthetic customers to generate.")] = 50_000,
             out: Annotated[str, typer.Option(help="Directory for the HTML reports.")] = "reports",
             as_json: JsonOption = False) -> None:
    """Run the whole MLOps loop (features → training → registry → A/B → feedback → drift →
    embeddings → promotion → rollback → reports) on the local cluster or --dsn.

    Example: pgmlops demo --reset
    """
    import os
    from pathlib import Path

    from .demo.runner import run_demo
    from .server import local_server

    target = dsn or os.environ.get("PGMLOPS_DSN") or os.environ.get("DATABASE_URL")
    if not target:
        server = local_server()
        server.start()
        target = server.url()
        console.print(f"local cluster: {target}")
    summary = run_demo(target, reset=reset, customers=customers, out_dir=Path(out),
                       console=err_console if as_json else console)
    if as_json:
        sys.stdout.write(json.dumps(summary, default=str) + "\n")


app.add_typer(report_app, name="report")
app.add_typer(drift_app, name="drift")
app.command("embed-worker")(embed_worker)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
