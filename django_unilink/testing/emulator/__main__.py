"""``python -m django_unilink.testing.emulator``: run the emulator until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from . import Emulator


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m django_unilink.testing.emulator",
        description=(
            "A local UniLink (Chatwoot API) server: the Application API subset django-unilink uses, "
            "signed webhooks to the inbox's webhook URL, and an agent console at /."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=3000, help="port (default: 3000; 0 picks a free one)")
    parser.add_argument("--token", default="emulator-token", help="the api_access_token to accept")
    parser.add_argument("--account-id", type=int, default=1, help="account id (default: 1)")
    parser.add_argument("--account-name", default="Acme Support", help="account name")
    parser.add_argument("--inbox-id", type=int, default=1, help="id of the API-channel inbox (default: 1)")
    parser.add_argument("--inbox-name", default="UniLink API", help="name of the inbox")
    parser.add_argument("--webhook-url", default=None, help="where to POST webhooks (default: none)")
    parser.add_argument("--secret", default=None, help="webhook signing secret (default: a generated one)")
    parser.add_argument(
        "--agent", action="store_true", help="the token's user is an agent, not an administrator (see docs)"
    )
    parser.add_argument("--webhook-timeout", type=float, default=5.0, help="seconds per delivery (default: 5)")
    parser.add_argument(
        "--flood-limit", type=int, default=200, help="messages per conversation per minute; 0 disables (default: 200)"
    )
    parser.add_argument(
        "--fault-rate", type=float, default=0.0, help="share of mutating API requests to fail at random (0..1)"
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log every request to stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    emulator = Emulator(
        host=args.host,
        port=args.port,
        account_id=args.account_id,
        account_name=args.account_name,
        api_access_token=args.token,
        admin=not args.agent,
        webhook_timeout=args.webhook_timeout,
        flood_limit=args.flood_limit or None,
        verbose=args.verbose,
    )
    inbox = emulator.add_inbox(args.inbox_id, name=args.inbox_name, webhook_url=args.webhook_url, secret=args.secret)
    if args.fault_rate:
        emulator.random_faults(args.fault_rate)
    try:
        emulator.start()
    except OSError as exc:
        print(f"Cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(f"UniLink emulator listening on {emulator.url}", flush=True)
    print(f"  agent console:  {emulator.url}/", flush=True)
    print(f"  account {args.account_id}, inbox {args.inbox_id}, webhooks -> {args.webhook_url or '(none)'}")
    if args.secret is None:
        # A generated secret exists only in this process: show it once so it can be configured.
        print(f"  generated webhook secret (set UNILINK['WEBHOOK_SECRET']): {inbox['secret']}")
    print("Press Ctrl-C to stop.", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
