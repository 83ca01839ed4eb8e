"""MAVLink captures: QGroundControl/MAVProxy `.tlog` files and raw byte streams.

A tlog is a sequence of [8-byte big-endian microseconds since the epoch][one MAVLink frame]. A raw
stream (a serial or UDP dump) is frames back to back with no capture time: its time is the
autopilot's own (`SYSTEM_TIME` anchors `time_boot_ms` to the epoch). Which one a file is, is read from
its bytes, not its name. A stretch that cannot be framed (a corrupt or truncated tlog) is skipped to
the next plausible [timestamp][start byte] and counted; the frames themselves are checked (CRC) by the
adapter's own parser, which counts the bad ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from pymavlink.dialects.v20 import common as mavlink2

from feeds.replay.clock import EARLIEST_S, LATEST_S
from feeds.replay.records import Record, Tally

STX_V1, STX_V2 = 0xFE, 0xFD
STX = (STX_V1, STX_V2)
STAMP = 8
RAW_CHUNK = 263  # at most one MAVLink 1 frame, so a raw stream's clock moves about once a frame
MAX_FRAME = 280


def _plausible_usec(u: int) -> bool:
    return EARLIEST_S * 1e6 <= u <= LATEST_S * 1e6


def frame_len(buf: bytes, i: int) -> int | None:
    """Length of the frame starting at buf[i] (header, payload, CRC, signature), None if unknown."""
    if i + 3 > len(buf):
        return None
    n = buf[i + 1]
    if buf[i] == STX_V1:
        return n + 8
    if buf[i] == STX_V2:
        return n + 12 + (13 if buf[i + 2] & 0x01 else 0)  # incompat flag 1: signed, 13 more bytes
    return None


def _stamped(data: bytes, i: int) -> bool:
    """A tlog record may start at i: a plausible stamp followed by a start byte."""
    return (i + STAMP < len(data) and data[i + STAMP] in STX
            and _plausible_usec(int.from_bytes(data[i:i + STAMP], "big")))


def _framed(data: bytes, i: int, need: int = 1) -> bool:
    """`need` records [8 bytes][whole frame] back to back from i (or fewer up to the end of data),
    whatever the stamps say: the shape of a tlog whose recorder's clock was wrong."""
    for k in range(need):
        if k and i == len(data):
            return True
        if i + STAMP >= len(data) or data[i + STAMP] not in STX:
            return False
        length = frame_len(data, i + STAMP)
        if length is None or i + STAMP + length > len(data):
            return False
        i += STAMP + length
    return True


def is_tlog(data: bytes) -> bool:
    # Three chained records: a raw stream has a start byte at 8 and two consistent lengths after it
    # only by a rare chance.
    return _stamped(data, 0) or _framed(data, 0, 3)


def read_tlog(data: bytes, tally: Tally, name: str = "") -> Iterator[Record]:
    """Invariant (tests check it): 8 * records + their frame bytes + skipped_bytes == len(data).

    A tlog whose first stamp is not a plausible date (a recorder without a set clock: 1970 plus its
    uptime, or zeros) is read by its shape alone; its records are timed from the replay's start at
    the pace of their stamps (noted), as a raw stream without SYSTEM_TIME."""
    loose = not _stamped(data, 0)
    first_usec: int | None = None
    wall0 = time.time()
    i, n, stretches, implausible = 0, len(data), 0, 0

    def starts(k: int) -> bool:
        return _stamped(data, k) or (loose and _framed(data, k, 2))

    while i < n:
        if starts(i):
            length = frame_len(data, i + STAMP)
            if length is not None and i + STAMP + length <= n:
                tally.records += 1
                usec = int.from_bytes(data[i:i + STAMP], "big")
                if _plausible_usec(usec):
                    t: float | None = usec / 1e6
                else:
                    implausible += 1
                    first_usec = usec if first_usec is None else first_usec
                    t = wall0 + max(usec - first_usec, 0) / 1e6
                yield Record(data[i + STAMP:i + STAMP + length], t)
                i += STAMP + length
                continue
        j = _next_stamp(data, i + 1, starts)
        tally.skipped_bytes += j - i
        stretches += 1
        i = j
    if stretches:
        tally.problem("capture:tlog_unframed", stretches)
        tally.notes.append(f"{name}: {stretches} stretch(es), {tally.skipped_bytes} bytes in all, could "
                           "not be read as [timestamp][MAVLink frame] (corrupt or truncated tlog); "
                           "skipped to the next record")
    if implausible:
        tally.notes.append(f"{name}: {implausible} tlog record(s) stamped outside 2000-2100 (the "
                           "recorder's clock was not set?): timed from the replay's start at the pace "
                           "of their stamps")


def _next_stamp(data: bytes, i: int, starts: Callable[[int], bool] = lambda k: False) -> int:
    n = len(data)
    while True:
        hits = [k for k in (data.find(b"\xfe", i + STAMP), data.find(b"\xfd", i + STAMP)) if k >= 0]
        if not hits:
            return n
        k = min(hits)
        if _stamped(data, k - STAMP) or starts(k - STAMP):
            return k - STAMP
        i = k - STAMP + 1


def _parser() -> mavlink2.MAVLink:
    p = mavlink2.MAVLink(None, srcSystem=255, srcComponent=190)
    p.robust_parsing = True
    return p


def _messages(parser: mavlink2.MAVLink, chunk: bytes) -> list:
    try:
        return parser.parse_buffer(chunk) or []
    except Exception:  # the adapter counts it; here it only costs this chunk's time stamps
        parser.buf = bytearray()
        parser.buf_index = 0
        return []


def read_raw(data: bytes, tally: Tally, name: str = "") -> Iterator[Record]:
    """Frame-sized chunks, each stamped with the time its messages carry (see module doc)."""
    boot_epoch: float | None = None  # epoch seconds at the anchor vehicle's boot
    anchor_sys: int | None = None
    probe = _parser()
    for k in range(0, len(data), 4096):  # first pass: a SYSTEM_TIME anywhere anchors the whole stream
        for m in _messages(probe, data[k:k + 4096]):
            if m.get_type() == "SYSTEM_TIME" and _plausible_usec(m.time_unix_usec) and m.time_boot_ms:
                boot_epoch = m.time_unix_usec / 1e6 - m.time_boot_ms / 1e3
                anchor_sys = m.get_srcSystem()
                break
        if boot_epoch is not None:
            break
    if boot_epoch is None:
        tally.notes.append(f"{name}: a raw MAVLink stream without SYSTEM_TIME: no capture time, so the "
                           "feed clock is wall time at replay start, advancing with the autopilot's "
                           "time_boot_ms")
    shadow = _parser()
    start_boot: float | None = None
    wall0 = time.time()
    for k in range(0, len(data), RAW_CHUNK):
        chunk = data[k:k + RAW_CHUNK]
        t: float | None = None
        for m in _messages(shadow, chunk):
            tb = getattr(m, "time_boot_ms", None)
            sysid = m.get_srcSystem() if hasattr(m, "get_srcSystem") else None
            if not isinstance(tb, int) or not tb or not sysid or not 1 <= sysid <= 254:
                continue
            if anchor_sys is None:
                anchor_sys = sysid
            if sysid != anchor_sys:
                continue  # another vehicle's boot time says nothing about this one's
            if boot_epoch is None:
                start_boot = tb / 1e3 if start_boot is None else start_boot
                boot_epoch = wall0 - start_boot
            t = boot_epoch + tb / 1e3 if t is None else max(t, boot_epoch + tb / 1e3)
        tally.records += 1
        yield Record(chunk, t)


def read_mavlink(data: bytes, tally: Tally, name: str = "") -> Iterator[Record]:
    return read_tlog(data, tally, name) if is_tlog(data) else read_raw(data, tally, name)
