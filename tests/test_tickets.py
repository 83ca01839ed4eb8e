"""Live-socket tickets: signed, short-lived, bound to a web session, each with its own id, and a
verifier that answers None (never raises) for anything else."""

from __future__ import annotations

import pytest
from itsdangerous import URLSafeTimedSerializer

from spine.tickets import issue_ticket, verify_ticket

SECRET = "ticket-test-secret"


def test_a_ticket_carries_user_role_session_kind_and_its_own_id() -> None:
    first = verify_ticket(SECRET, issue_ticket(SECRET, "kim", "operator", "sid-1", "user"))
    second = verify_ticket(SECRET, issue_ticket(SECRET, "kim", "operator", "sid-1", "user"))
    assert {k: first[k] for k in ("u", "r", "sid", "k")} == {"u": "kim", "r": "operator", "sid": "sid-1",
                                                            "k": "user"}
    assert first["j"] != second["j"] and len(first["j"]) >= 16
    assert verify_ticket(SECRET, issue_ticket(SECRET, "wall-1", "operator", "s2", "device"))["k"] == "device"
    with pytest.raises(ValueError):
        issue_ticket(SECRET, "kim", "operator", "sid-1", "robot")


def _signed(payload: object) -> str:
    return URLSafeTimedSerializer(SECRET, salt="cc-live-ticket").dumps(payload)


@pytest.mark.parametrize("ticket", [
    "", "x" * 5000, "not.a.ticket", "\x00\xff", issue_ticket("other-secret", "kim", "operator", "s", "user"),
    _signed({"u": "kim", "r": "operator"}),  # the old shape: no session, no id
    _signed({"u": "kim", "r": "operator", "sid": "s", "k": "user", "j": ""}),
    _signed({"u": "kim", "r": "operator", "sid": "s", "k": "admin", "j": "id"}),
    _signed({"u": "kim", "r": "operator", "sid": 5, "k": "user", "j": "id"}),
    _signed({"u": "kim", "r": "operator", "sid": "s", "k": "user", "j": "id", "extra": 1}),
    _signed(["u", "kim"]), _signed(None),
])
def test_anything_but_a_genuine_ticket_of_todays_shape_is_refused(ticket: str) -> None:
    assert verify_ticket(SECRET, ticket) is None


def test_tickets_expire() -> None:
    ticket = issue_ticket(SECRET, "kim", "operator", "sid-1", "user")
    assert verify_ticket(SECRET, ticket, max_age=60) is not None
    assert verify_ticket(SECRET, ticket, max_age=-1) is None
