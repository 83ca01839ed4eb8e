"""Who may hold a live socket: single-use tickets, and a sweep that ends revoked sessions' sockets.

A ticket (spine.tickets, 60 s, signed) names the user, role, server-side session id `sid` and a
unique ticket id `j`. The gateway claims `j` with SET NX, so a ticket opens one socket only. It also
remembers the ids it accepted itself for the same 120 s (`ClaimedTickets`): a Redis that comes back
empty has lost the markers, and without this a ticket used seconds ago would open a second
socket on the same gateway for the rest of its 60 s life.

Every `session_check_s` the sweep asks the store which sids of open sockets are still valid
(logout, password change, disabled user, revoked device token all end a session) and the server
closes the others with 4401, after stopping their video at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

import redis.asyncio as aioredis

from spine import channels

log = logging.getLogger(__name__)

SessionCheck = Callable[[set[str]], set[str]]  # sids -> the subset still valid (blocking: in a thread)
CLOSE_REVOKED = 4401  # the page shows "revoked" and goes to the login
CLOSE_FULL = 1013  # "try again later": the page reconnects after a pause
FAILURE_LOG_EVERY_S = 60.0
_last_failure_log = [float("-inf")]


def ticket_problem(who: dict | None, need_sid: bool) -> str | None:
    """Why a verified ticket payload cannot open a socket (None: it can)."""
    if who is None:
        return "missing, forged or expired ticket"
    j = who.get("j")
    if not isinstance(j, str) or not 0 < len(j) <= 128:
        return "ticket without an id (not single-use)"
    sid = who.get("sid")
    if need_sid and (not isinstance(sid, str) or not sid):
        return "ticket without a session"
    return None


class ClaimedTickets:
    """Ticket ids this process has claimed, each kept TICKET_USED_TTL_S. Bounded: when full, the
    oldest goes first (it is the nearest to expiring; a ticket lives 60 s, an id is kept 120 s), and
    such early drops are counted. Every id costs ~200 bytes, so the default bound is ~20 MB at most;
    tickets come only from logged-in users through the web, far below that rate."""

    def __init__(self, max_ids: int = 100_000, ttl_s: float = channels.TICKET_USED_TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_ids = max_ids
        self.ttl_s = ttl_s
        self.clock = clock
        self._until: OrderedDict[str, float] = OrderedDict()  # id -> expiry; insertion = expiry order
        self.dropped_early = 0

    def __len__(self) -> int:
        return len(self._until)

    def _expire(self, now: float) -> None:
        while self._until and next(iter(self._until.values())) <= now:
            self._until.popitem(last=False)

    def seen(self, ticket_id: str) -> bool:
        now = self.clock()
        self._expire(now)
        return ticket_id in self._until

    def add(self, ticket_id: str) -> None:
        now = self.clock()
        self._expire(now)
        if ticket_id in self._until:
            return
        while len(self._until) >= self.max_ids:
            self._until.popitem(last=False)
            self.dropped_early += 1
        self._until[ticket_id] = now + self.ttl_s


LOCAL_CLAIMS = ClaimedTickets()  # one gateway per process: this process's claims


async def claim_ticket(client: aioredis.Redis, ticket_id: str, local: ClaimedTickets | None = None) -> bool:
    """True the first time a ticket id is claimed; False for a replay. Redis answers for every
    gateway; `local` (this process's claims by default) answers when Redis lost its marker."""
    local = LOCAL_CLAIMS if local is None else local
    if local.seen(ticket_id):
        return False
    claimed = bool(await client.set(channels.ticket_used_key(ticket_id), b"1", nx=True,
                                    ex=channels.TICKET_USED_TTL_S))
    local.add(ticket_id)  # a replay refused by Redis stays refused here too, after a Redis restart
    return claimed


async def invalid_sessions(check: SessionCheck, sids: Iterable[str]) -> set[str]:
    """The sids among `sids` that are no longer valid. A failing store revokes nothing (logged):
    a database hiccup must not blank every wall; a revocation is seen at the next good check."""
    wanted = set(sids)
    if not wanted:
        return set()
    try:
        valid = await asyncio.to_thread(check, wanted)
    except Exception:
        now = time.monotonic()
        if now - _last_failure_log[0] >= FAILURE_LOG_EVERY_S:  # asked every second: log once a minute
            _last_failure_log[0] = now
            log.exception("session check failed; keeping open sockets until a check succeeds")
        return set()
    return wanted - set(valid)
