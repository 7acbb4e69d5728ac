#!/usr/bin/env bash
# Install (from Debian packages) and start the services the tests and the demo use, on loopback only.
#   bash scripts/services.sh postgres redis
# Idempotent: a service already answering is left alone. Needs root (or sudo) only to install.
set -euo pipefail

PGPORT="${PGPORT:-5432}"
REDIS_PORT="${REDIS_PORT:-6379}"
PGUSER_NAME="${PGUSER:-unilink}"
PGPASSWORD_VALUE="${PGPASSWORD:-unilink}"

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else
    echo "services.sh: need root to run: $*" >&2; return 1; fi
}

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

start_postgres() {
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    echo "services.sh: installing PostgreSQL from Debian packages..."
    apt_install postgresql postgresql-client
  fi
  if ! command -v pg_isready >/dev/null; then apt_install postgresql-client; fi
  if ! pg_isready -q -h 127.0.0.1 -p "$PGPORT"; then
    local version
    version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -q "^$version main$"; then
      as_root pg_createcluster "$version" main -p "$PGPORT" >/dev/null
    fi
    # Loopback only, and fast-but-unsafe settings that suit a throwaway test database.
    as_root pg_ctlcluster "$version" main start -o "-c listen_addresses=127.0.0.1 -c port=$PGPORT -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p "$PGPORT" && break; sleep 1; done
    pg_isready -q -h 127.0.0.1 -p "$PGPORT" || { echo "services.sh: PostgreSQL did not start" >&2; exit 1; }
  fi
  # A role and a database for the tests (SUPERUSER so pytest-django can create test databases).
  # psql runs as the postgres OS user over the local socket (peer authentication).
  local psql_postgres=(env -u PGUSER -u PGPASSWORD -u PGHOST -u PGDATABASE su postgres -c)
  as_root "${psql_postgres[@]}" "psql -q -X -p $PGPORT -d postgres -v ON_ERROR_STOP=1 -c \"DO \\\$\\\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$PGUSER_NAME') THEN CREATE ROLE $PGUSER_NAME LOGIN SUPERUSER PASSWORD '$PGPASSWORD_VALUE'; END IF; END \\\$\\\$;\"" >/dev/null
  if ! as_root "${psql_postgres[@]}" "psql -q -X -p $PGPORT -d postgres -tAc \"SELECT 1 FROM pg_database WHERE datname = '$PGUSER_NAME'\"" | grep -q 1; then
    as_root "${psql_postgres[@]}" "createdb -p $PGPORT -O $PGUSER_NAME $PGUSER_NAME" >/dev/null
  fi
  echo "services.sh: PostgreSQL on 127.0.0.1:$PGPORT (user $PGUSER_NAME)"
}

start_redis() {
  if ! command -v redis-server >/dev/null; then
    echo "services.sh: installing Redis from Debian packages..."
    apt_install redis-server redis-tools
  fi
  if ! redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --save '' --appendonly no \
      --logfile /tmp/unilink-redis.log >/dev/null
    for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.2; done
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null || { echo "services.sh: Redis did not start" >&2; exit 1; }
  fi
  echo "services.sh: Redis on 127.0.0.1:$REDIS_PORT"
}

start_chromium() {
  if ! command -v chromium >/dev/null; then
    echo "services.sh: installing Chromium from Debian packages..."
    apt_install chromium fonts-dejavu-core
  fi
  echo "services.sh: $(chromium --version 2>/dev/null | head -n 1)"
}

[ $# -gt 0 ] || set -- postgres redis
for service in "$@"; do
  case "$service" in
    postgres) start_postgres ;;
    redis) start_redis ;;
    chromium) start_chromium ;;
    *) echo "services.sh: unknown service $service (postgres, redis, chromium)" >&2; exit 2 ;;
  esac
done
