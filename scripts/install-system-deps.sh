#!/usr/bin/env bash
# Installs what pgmlops needs on a Debian bookworm machine, idempotently, as root:
# PostgreSQL 15 + PL/Python + server headers, pgvector built from Debian trixie's
# signed source package (sha256-verified), chromium for report tests, and an
# unprivileged user for test clusters (initdb refuses root).
set -euo pipefail

PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
PGVECTOR_VERSION=0.8.0-1
PGVECTOR_SHA256=867a2c328d4928a5a9d6f052cd3bc78c7d60228a9b914ad32aa3db88e9de27b0
STATE=/var/lib/pgmlops-deps
APT_PACKAGES=(postgresql-15 postgresql-plpython3-15 postgresql-server-dev-15 postgresql-client-15
              python3-numpy build-essential dpkg-dev sqlsmith chromium)

# Resolved before any cd: the pgvector build below changes directory.
here="$(cd "$(dirname "$0")/.." && pwd)"

log() { printf '[install-system-deps] %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then exec sudo -E bash "$0" "$@"; fi
  log "must run as root (apt-get, make install)"; exit 1
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

sharedir="$($PG_CONFIG --sharedir)"
if [ ! -f "$sharedir/extension/vector.control" ]; then
  log "building pgvector from Debian trixie's source package"
  mkdir -p "$STATE/apt/lists/partial" "$STATE/src"
  # A private apt configuration: the machine's own sources stay untouched.
  echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
    > "$STATE/apt/trixie-src.list"
  APT_OPTS=(-o "Dir::Etc::SourceList=$STATE/apt/trixie-src.list" -o "Dir::Etc::SourceParts=/dev/null"
            -o "Dir::State::Lists=$STATE/apt/lists" -o "APT::Get::List-Cleanup=0")
  apt-get "${APT_OPTS[@]}" update -qq
  version="$PGVECTOR_VERSION"
  if ! apt-cache "${APT_OPTS[@]}" showsrc pgvector | grep -q "^Version: $PGVECTOR_VERSION\$"; then
    version="$(apt-cache "${APT_OPTS[@]}" showsrc pgvector | awk '/^Version: 0\.8\./{print $2}' | sort -V | tail -1)"
    [ -n "$version" ] || { log "trixie offers no pgvector 0.8.x"; exit 1; }
    log "WARNING: pgvector $PGVECTOR_VERSION is no longer offered; building $version instead"
  fi
  rm -rf "$STATE/src" && mkdir -p "$STATE/src" && cd "$STATE/src"
  apt-get "${APT_OPTS[@]}" source --download-only -qq "pgvector=$version"
  orig="$(ls pgvector_*.orig.tar.*)"
  if [ "$version" = "$PGVECTOR_VERSION" ]; then
    echo "$PGVECTOR_SHA256  $orig" | sha256sum -c --quiet - || { log "sha256 mismatch for $orig"; exit 1; }
  fi
  tar xf "$orig"
  cd pgvector-*/
  make -s PG_CONFIG=$PG_CONFIG OPTFLAGS="" >/dev/null
  make -s PG_CONFIG=$PG_CONFIG install >/dev/null
  log "pgvector $version installed"
fi

# Unprivileged owner of test and demo clusters.
id pgmlops >/dev/null 2>&1 || useradd --system --create-home --shell /bin/bash pgmlops

# Our extension files into the server (cheap; keeps the server copy current).
make -s -C "$here/extension" PG_CONFIG=$PG_CONFIG install >/dev/null
# A second installation without PL/Python for the companion-isolation test.
bash "$here/scripts/build-nopython-pg.sh" >/dev/null
log "ok: $($PG_CONFIG --version), pgvector $(sed -n "s/default_version = '\(.*\)'/\1/p" "$sharedir/extension/vector.control")"
