"""`python app.py incident cap ID [--type Alert|Update|Cancel] [--agency 112|119|public] [--out FILE]`.

Prints (or writes) the CAP 1.2 message of the incident as it would be sent now, validated against
the OASIS XSD: exit 0 when valid, 1 when the message does not validate or the incident cannot have
it (e.g. an Update before any Alert), 2 for a configuration problem. Nothing is stored or sent.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from config.settings import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    inc = sub.add_parser("incident", help="incident tools").add_subparsers(dest="action", required=True)
    c = inc.add_parser("cap", help="the CAP 1.2 message of an incident, validated against the OASIS XSD")
    c.add_argument("id", type=int)
    c.add_argument("--type", choices=("Alert", "Update", "Cancel"), default=None,
                   help="default: Alert, or Update after an earlier message to the agency")
    c.add_argument("--agency", choices=("112", "119", "public"), default="112")
    c.add_argument("--out", type=Path, default=None, help="write the XML to this file instead of stdout")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from incidents import cap
    from incidents.db import Refused
    from incidents.service import make_store

    store = make_store(settings.database.resolved_url())
    try:
        store.migrate()
        msg = store.cap_message(args.id, args.type, args.agency)
    except Refused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        store.dispose()
    problems = cap.validate(msg.xml)
    if args.out:
        args.out.write_text(msg.xml, encoding="utf-8")
    else:
        sys.stdout.write(msg.xml)
    for p in problems:
        print(f"invalid: {p}", file=sys.stderr)
    return 1 if problems else 0
