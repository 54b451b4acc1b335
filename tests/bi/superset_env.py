"""A real Apache Superset for the BI test: an ignored venv (tests/bi/.superset-venv, built
once and reused), a temporary config (SQLite metadata, CSRF off), admin user, and a server
on 127.0.0.1 driven through the REST API.

    .venv/bin/python -m tests.bi.superset_env build     # build / verify the venv only
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VENV = HERE / ".superset-venv"
REQUIREMENTS = ("apache-superset==6.1.0", "flask-caching==2.4.1", "rich", "cachetools", "psycopg2-binary")
STAMP = VENV / ".installed"
METADATA_TEMPLATE = VENV / "metadata-template.db"
ADMIN = ("admin", "admin-pass-1")


class VenvUnavailable(RuntimeError):
    """The Superset venv could not be built (no network / PyPI, build failure)."""


def superset_bin() -> Path:
    return VENV / "bin" / "superset"


def ensure_venv(timeout: float = 900) -> Path:
    """Build the venv once (pip from PyPI); later runs reuse it when the pins are unchanged."""
    wanted = "\n".join(REQUIREMENTS)
    if STAMP.exists() and STAMP.read_text() == wanted and superset_bin().exists():
        return VENV
    py = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
    try:
        if not (VENV / "bin" / "python").exists():
            subprocess.run([py, "-m", "venv", str(VENV)], check=True, capture_output=True, text=True, timeout=120)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", *REQUIREMENTS],
                       check=True, capture_output=True, text=True, timeout=timeout)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        raise VenvUnavailable(f"cannot build {VENV} with {' '.join(REQUIREMENTS)}: {str(detail)[-800:]}") from None
    METADATA_TEMPLATE.unlink(missing_ok=True)
    STAMP.write_text(wanted)
    return VENV


CONFIG = """
SECRET_KEY = {secret!r}
SQLALCHEMY_DATABASE_URI = {uri!r}
WTF_CSRF_ENABLED = False
TALISMAN_ENABLED = False
CONTENT_SECURITY_POLICY_WARNING = False
FEATURE_FLAGS = {{}}
CACHE_CONFIG = {{"CACHE_TYPE": "SimpleCache"}}
DATA_CACHE_CONFIG = {{"CACHE_TYPE": "NullCache"}}
RATELIMIT_ENABLED = False
AUTH_RATE_LIMITED = False
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(method: str, url: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    """One JSON request to the local Superset (no proxies); returns (status, decoded body)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with OPENER.open(req, timeout=120) as resp:
            raw = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


@dataclass
class Superset:
    url: str
    token: str

    def api(self, method: str, path: str, body: Any = None) -> Any:
        status, payload = http(method, self.url + path, body, self.token)
        if status >= 400:
            raise AssertionError(f"Superset {method} {path} -> {status}: {str(payload)[:2000]}")
        return payload


@contextmanager
def running_superset(workdir: Path) -> Iterator[Superset]:
    """Configure, initialise and start Superset on 127.0.0.1; stop it on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "superset_config.py"
    config.write_text(CONFIG.format(secret=os.urandom(24).hex(), uri=f"sqlite:///{workdir / 'superset.db'}"))
    env = {**os.environ, "SUPERSET_CONFIG_PATH": str(config), "SUPERSET_HOME": str(workdir),
           "FLASK_APP": "superset.app:create_app()", "PYTHONPATH": "", "NO_PROXY": "127.0.0.1,localhost"}
    env.pop("VIRTUAL_ENV", None)
    bin_ = str(superset_bin())

    def run(*args: str) -> None:
        proc = subprocess.run([bin_, *args], env=env, capture_output=True, text=True, timeout=600, cwd=workdir)
        if proc.returncode != 0:
            raise RuntimeError(f"superset {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")

    # db upgrade + create-admin + init take ~2 minutes: do them once per venv and copy the
    # resulting SQLite metadata database on later runs (the SECRET_KEY only encrypts
    # database passwords, and the template holds none).
    metadata = workdir / "superset.db"
    if METADATA_TEMPLATE.exists():
        shutil.copyfile(METADATA_TEMPLATE, metadata)
    else:
        run("db", "upgrade")
        run("fab", "create-admin", "--username", ADMIN[0], "--firstname", "Ada", "--lastname", "Admin",
            "--email", "admin@example.invalid", "--password", ADMIN[1])
        run("init")
        partial = METADATA_TEMPLATE.with_name(f"{METADATA_TEMPLATE.name}.{os.getpid()}")
        shutil.copyfile(metadata, partial)
        os.replace(partial, METADATA_TEMPLATE)  # atomic: a parallel run never copies half a file
    port = _free_port()
    log = (workdir / "server.log").open("w")
    server = subprocess.Popen([bin_, "run", "-h", "127.0.0.1", "-p", str(port), "--with-threads"], env=env,
                              stdout=log, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if http("GET", url + "/health")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("Superset did not start:\n" + (workdir / "server.log").read_text()[-3000:])
            time.sleep(0.5)
        status, login = http("POST", url + "/api/v1/security/login",
                             {"username": ADMIN[0], "password": ADMIN[1], "provider": "db", "refresh": True})
        if status != 200:
            raise RuntimeError(f"Superset login failed: {status} {login}")
        yield Superset(url, login["access_token"])
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


if __name__ == "__main__":
    print(ensure_venv())
