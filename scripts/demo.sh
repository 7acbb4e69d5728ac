#!/usr/bin/env bash
# Run the example support site end to end. Called by `make demo` (docs/example-project.md).
#
# Starts, on 127.0.0.1: the UniLink emulator (API + agent console), a Celery worker, and the site.
# Ctrl-C (or SIGTERM) stops all of them.
#
# Environment (all optional):
#   DEMO_PORT=8000 DEMO_EMULATOR_PORT=3000    ports of the site and of the emulator
#   DEMO_DATA_DIR=example_project             where db.sqlite3 and the filesystem broker live
#   DEMO_ADMIN_PASSWORD=unilink-demo          password of the admin login "admin"
#   DEMO_DATABASE_URL=postgres://u:p@127.0.0.1:5432/name    PostgreSQL instead of SQLite
#   CELERY_BROKER_URL=redis://127.0.0.1:6379/0              Redis (or amqp://) instead of the filesystem broker
#   UNILINK_BASE_URL=https://support.example.com            a real UniLink: no emulator is started; then also
#     UNILINK_ACCOUNT_ID, UNILINK_API_ACCESS_TOKEN, UNILINK_INBOX_ID, UNILINK_WEBHOOK_SECRET
#   UNILINK_WEBHOOK_PROCESSING=celery|inline  who processes webhook deliveries (default: the worker)
#   DEMO_WORKER_ARGS="--pool=prefork --concurrency=2"       extra `celery worker` options
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY="$ROOT/.venv/bin/python"
if [ ! -x "$PY" ]; then
  echo "demo: creating the virtualenv (make venv)..."
  make venv
fi

HOST=127.0.0.1
PORT="${DEMO_PORT:-8000}"
EMULATOR_PORT="${DEMO_EMULATOR_PORT:-3000}"
ADMIN_PASSWORD="${DEMO_ADMIN_PASSWORD:-unilink-demo}"
export DEMO_DATA_DIR="${DEMO_DATA_DIR:-$ROOT/example_project}"
export DJANGO_SETTINGS_MODULE=example.settings
export PYTHONUNBUFFERED=1
mkdir -p "$DEMO_DATA_DIR"

if [ -n "${UNILINK_BASE_URL:-}" ]; then
  USE_EMULATOR=""
  for name in UNILINK_API_ACCESS_TOKEN UNILINK_INBOX_ID UNILINK_WEBHOOK_SECRET; do
    [ -n "${!name:-}" ] || { echo "demo: UNILINK_BASE_URL is set, so $name must be set too." >&2; exit 2; }
  done
else
  # The emulator and the site share these values; the defaults match example/settings.py.
  USE_EMULATOR=1
  export UNILINK_BASE_URL="http://$HOST:$EMULATOR_PORT"
  export UNILINK_ACCOUNT_ID="${UNILINK_ACCOUNT_ID:-1}"
  export UNILINK_API_ACCESS_TOKEN="${UNILINK_API_ACCESS_TOKEN:-demo-token}"
  export UNILINK_INBOX_ID="${UNILINK_INBOX_ID:-7}"
  export UNILINK_WEBHOOK_SECRET="${UNILINK_WEBHOOK_SECRET:-demo-webhook-secret}"
fi
WEBHOOK_URL="http://$HOST:$PORT/unilink/webhook/default/"

cd "$ROOT/example_project"

# --- the database and the admin login ---------------------------------------------------------
"$PY" manage.py migrate --noinput -v 0
DEMO_ADMIN_PASSWORD="$ADMIN_PASSWORD" "$PY" manage.py shell -v 0 -c "
import os
from django.contrib.auth import get_user_model
user, _ = get_user_model().objects.get_or_create(username='admin', defaults={'email': 'admin@example.com'})
user.is_staff = user.is_superuser = True
user.set_password(os.environ['DEMO_ADMIN_PASSWORD'])
user.save()
"

# --- the processes ------------------------------------------------------------------------------
PIDS=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "demo: stopping (the worker finishes its current tasks first)..."
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  # The worker's warm shutdown takes a few seconds (it polls the filesystem broker); after
  # 20 s whatever is left is killed.
  for _ in $(seq 1 200); do
    alive=""
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ -z "$alive" ] && break
    sleep 0.1
  done
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap 'stop' EXIT

# Each process's output goes to this terminal, prefixed with its name.
start() {
  local name=$1
  shift
  "$@" > >(sed -u "s/^/[$name] /") 2>&1 &
  PIDS+=("$!")
}

wait_for_port() {
  local port=$1 what=$2
  for _ in $(seq 1 150); do
    "$PY" -c "import socket, sys; socket.create_connection(('$HOST', $port), timeout=0.5).close()" 2>/dev/null && return 0
    for pid in "${PIDS[@]}"; do
      kill -0 "$pid" 2>/dev/null || { echo "demo: the $what exited; see its output above." >&2; exit 1; }
    done
    sleep 0.2
  done
  echo "demo: the $what did not open port $port in 30 s." >&2
  exit 1
}

if [ -n "$USE_EMULATOR" ]; then
  start emulator "$PY" -m django_unilink.testing.emulator --host "$HOST" --port "$EMULATOR_PORT" \
    --token "$UNILINK_API_ACCESS_TOKEN" --account-id "$UNILINK_ACCOUNT_ID" --inbox-id "$UNILINK_INBOX_ID" \
    --webhook-url "$WEBHOOK_URL" --secret "$UNILINK_WEBHOOK_SECRET"
  wait_for_port "$EMULATOR_PORT" emulator
fi

# shellcheck disable=SC2086  # DEMO_WORKER_ARGS is a list of options
# -B: the worker also runs Celery beat, for django-unilink's periodic tasks (example/celery.py).
start worker "$PY" -m celery -A example worker -B --schedule "$DEMO_DATA_DIR/.celery/beat-schedule" \
  --loglevel=INFO --without-gossip --without-mingle --without-heartbeat \
  ${DEMO_WORKER_ARGS:---pool=prefork --concurrency=2}

# --noreload: one process per server, so stopping the demo stops it for sure.
start site "$PY" manage.py runserver --noreload "$HOST:$PORT"
wait_for_port "$PORT" "site"

cat <<EOF

  ==========================================================================================
   django-unilink demo is running.

   Chat page (a visitor):   http://$HOST:$PORT/
EOF
if [ -n "$USE_EMULATOR" ]; then
  echo "   Agent console:           $UNILINK_BASE_URL/"
else
  echo "   UniLink (real):          $UNILINK_BASE_URL/   set the inbox's webhook URL to a public address"
  echo "                            that reaches $WEBHOOK_URL"
fi
cat <<EOF
   Admin:                   http://$HOST:$PORT/admin/   (login: admin / $ADMIN_PASSWORD)

   Write on the chat page, answer from the agent console, watch the reply appear.
   Press Ctrl-C to stop.
  ==========================================================================================

EOF

# Wait until Ctrl-C, or until one of the processes dies (then stop the others too).
set +e
wait -n "${PIDS[@]}"
status=$?
echo "demo: a process exited (status $status); stopping the others." >&2
exit 1
