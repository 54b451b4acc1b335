#!/usr/bin/env bash
# Builds a second PostgreSQL 15 installation that has pgvector but no PL/Python, for the
# companion-isolation test (tests/reliability/test_fuzz_companion.py): the core extension
# must install and work on a server where plpython3u does not exist at all.
#
# It unpacks the very postgresql-15 .deb that is installed (same version; the package has
# no PL/Python, which Debian ships separately) into $NOPY_ROOT, adds pgvector's files and
# links the client tools. PostgreSQL binaries are relocatable: they find share/ and lib/
# relative to their own path. Idempotent and cheap once built; run as root by
# scripts/install-system-deps.sh (so by `make setup`, `make test`).
set -euo pipefail

STATE=/var/lib/pgmlops-deps
NOPY_ROOT="${PGMLOPS_NOPY_ROOT:-$STATE/pg15-nopython}"
SYS_BIN=/usr/lib/postgresql/15/bin
SYS_LIB=/usr/lib/postgresql/15/lib
SYS_EXT=/usr/share/postgresql/15/extension

# Resolved before any cd (the .deb download below changes directory).
here="$(cd "$(dirname "$0")/.." && pwd)"

log() { printf '[build-nopython-pg] %s\n' "$*"; }

version="$(dpkg-query -W -f='${Version}' postgresql-15)"
marker="$NOPY_ROOT/.built-from-$version"
bin="$NOPY_ROOT/usr/lib/postgresql/15/bin"
if [ ! -f "$marker" ]; then
  deb="/var/cache/apt/archives/postgresql-15_${version//:/%3a}_amd64.deb"
  if [ ! -f "$deb" ]; then
    mkdir -p "$STATE/debs" && cd "$STATE/debs"
    apt-get download -qq "postgresql-15=$version"
    deb="$STATE/debs/$(ls postgresql-15_*.deb | tail -1)"
  fi
  rm -rf "$NOPY_ROOT" && mkdir -p "$NOPY_ROOT"
  dpkg -x "$deb" "$NOPY_ROOT"
  touch "$marker"
  log "unpacked postgresql-15 $version into $NOPY_ROOT"
fi

# pgvector and the client tools (pg_isready, psql, pg_dump...) come from the system install.
cp "$SYS_LIB/vector.so" "$NOPY_ROOT/usr/lib/postgresql/15/lib/"
cp "$SYS_EXT"/vector.control "$SYS_EXT"/vector--*.sql "$NOPY_ROOT/usr/share/postgresql/15/extension/"
for b in "$SYS_BIN"/*; do
  name="$(basename "$b")"
  # pg_config would describe the system install, not this one.
  [ "$name" = pg_config ] || [ -e "$bin/$name" ] || ln -s "$b" "$bin/$name"
done
if ls "$NOPY_ROOT"/usr/share/postgresql/15/extension/ | grep -q '^plpython'; then
  log "plpython files found in $NOPY_ROOT: this installation must not have them"; exit 1
fi
# Our own extension files (the test checks they equal the repository's).
cp "$here"/extension/pgmlops*.control "$here"/extension/pgmlops*.sql "$NOPY_ROOT/usr/share/postgresql/15/extension/"
chmod -R a+rX "$NOPY_ROOT"
log "ok: $bin (no plpython3u)"
