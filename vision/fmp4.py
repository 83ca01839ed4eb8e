"""Fragmented MP4 as the browser's Media Source Extensions want it, cut out of a muxer's byte stream.

FFmpeg's mp4 muxer (through PyAV) writes whenever its I/O buffer fills, not at box boundaries, so
the bytes are re-cut here into top-level boxes: the initialization segment (`ftyp` + `moov`) and
media segments (`moof` + `mdat`). Each media segment is checked for whether it starts with a sync
sample (a keyframe: a viewer may join there) and carries its decode time, so a viewer knows where
it is in the stream. Sizes are bounded: a box past MAX_BOX is refused (a broken muxer must not make
us buffer without end).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAX_BOX = 16 * 1024 * 1024  # a 4K keyframe is ~1 MB; anything this large is not a video fragment


class BoxError(ValueError):
    pass


@dataclass(frozen=True)
class Segment:
    kind: str  # "init" or "media"
    data: bytes
    key: bool = False  # media: the first sample is a sync sample (keyframe)
    decode_time: int = 0  # media: baseMediaDecodeTime (tfdt) in the track's timescale


def boxes(buf: bytes | memoryview, start: int = 0, end: int | None = None) -> list[tuple[str, int, int]]:
    """(type, payload start, box end) of each box in buf[start:end]; BoxError on a malformed one."""
    end = len(buf) if end is None else end
    out = []
    i = start
    while i + 8 <= end:
        size, kind = struct.unpack_from(">I4s", buf, i)
        head = 8
        if size == 1:
            if i + 16 > end:
                raise BoxError("truncated large box")
            size = struct.unpack_from(">Q", buf, i + 8)[0]
            head = 16
        elif size == 0:
            size = end - i
        if size < head or i + size > end:
            raise BoxError(f"box {kind!r} of size {size} does not fit")
        out.append((kind.decode("latin-1"), i + head, i + size))
        i += size
    if i != end:
        raise BoxError("trailing bytes after the last box")
    return out


def _child(buf: bytes, start: int, end: int, kind: str) -> tuple[int, int] | None:
    for k, s, e in boxes(buf, start, end):
        if k == kind:
            return s, e
    return None


def _path(buf: bytes, start: int, end: int, *kinds: str) -> tuple[int, int] | None:
    span: tuple[int, int] | None = (start, end)
    for k in kinds:
        if span is None:
            return None
        span = _child(buf, span[0], span[1], k)
    return span


def timescale(init: bytes) -> int:
    """The first track's timescale (moov/trak/mdia/mdhd); 0 if absent."""
    span = _path(init, 0, len(init), "moov", "trak", "mdia", "mdhd")
    if span is None:
        return 0
    s, _ = span
    version = init[s]
    return struct.unpack_from(">I", init, s + (20 if version == 1 else 12))[0]


def codec_string(init: bytes) -> str:
    """`avc1.PPCCLL` from the avcC box (profile, compatibility, level), as MediaSource wants it."""
    stsd = _path(init, 0, len(init), "moov", "trak", "mdia", "minf", "stbl", "stsd")
    if stsd is None:
        raise BoxError("no stsd")
    entry = _child(init, stsd[0] + 8, stsd[1], "avc1")
    if entry is None:
        raise BoxError("not H.264 (no avc1 sample entry)")
    # VisualSampleEntry: 78 bytes before its child boxes.
    avcc = _child(init, entry[0] + 78, entry[1], "avcC")
    if avcc is None:
        raise BoxError("no avcC")
    p = init[avcc[0] + 1: avcc[0] + 4]
    return "avc1." + p.hex()


def media_info(seg: bytes) -> tuple[bool, int]:
    """(first sample is a keyframe, baseMediaDecodeTime) of a moof+mdat segment."""
    traf = _path(seg, 0, len(seg), "moof", "traf")
    if traf is None:
        raise BoxError("no moof/traf")
    s, e = traf
    default_flags = None
    tfhd = _child(seg, s, e, "tfhd")
    if tfhd is not None:
        ts, _ = tfhd
        flags = int.from_bytes(seg[ts + 1: ts + 4], "big")
        off = ts + 8  # version/flags, track_ID
        for bit, size in ((0x1, 8), (0x2, 4), (0x8, 4), (0x10, 4)):
            if flags & bit:
                off += size
        if flags & 0x20:
            default_flags = struct.unpack_from(">I", seg, off)[0]
    decode_time = 0
    tfdt = _child(seg, s, e, "tfdt")
    if tfdt is not None:
        ds, _ = tfdt
        decode_time = (struct.unpack_from(">Q", seg, ds + 4)[0] if seg[ds] == 1
                       else struct.unpack_from(">I", seg, ds + 4)[0])
    first_flags = default_flags
    trun = _child(seg, s, e, "trun")
    if trun is not None:
        rs, _ = trun
        flags = int.from_bytes(seg[rs + 1: rs + 4], "big")
        off = rs + 8  # version/flags, sample_count
        if flags & 0x1:
            off += 4  # data_offset
        if flags & 0x4:
            first_flags = struct.unpack_from(">I", seg, off)[0]
        elif flags & 0x400:  # per-sample flags: after the first sample's duration and size, if any
            skip = sum(4 for bit in (0x100, 0x200) if flags & bit)
            first_flags = struct.unpack_from(">I", seg, off + skip)[0]
    if first_flags is None:
        return False, decode_time
    # sample_depends_on == 2 (depends on no other) or sample_is_non_sync_sample clear.
    return not (first_flags & 0x10000), decode_time


class Splitter:
    """Feed muxer output in any chunks; take whole segments out."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pending_init = bytearray()
        self._moof: bytes | None = None
        self.init: bytes | None = None

    def feed(self, chunk: bytes) -> list[Segment]:
        self._buf += chunk
        out: list[Segment] = []
        while len(self._buf) >= 8:
            size, kind_b = struct.unpack_from(">I4s", self._buf, 0)
            head = 8
            if size == 1:
                if len(self._buf) < 16:
                    break
                size = struct.unpack_from(">Q", self._buf, 8)[0]
                head = 16
            if size < head or size > MAX_BOX:
                raise BoxError(f"box {kind_b!r} of size {size} refused")
            if len(self._buf) < size:
                break
            box = bytes(self._buf[:size])
            del self._buf[:size]
            kind = kind_b.decode("latin-1")
            if kind in ("ftyp", "moov"):
                self._pending_init += box
                if kind == "moov":
                    self.init = bytes(self._pending_init)
                    self._pending_init = bytearray()
                    out.append(Segment("init", self.init))
            elif kind == "moof":
                self._moof = box
            elif kind == "mdat" and self._moof is not None:
                seg = self._moof + box
                self._moof = None
                try:
                    key, dt = media_info(seg)
                except (struct.error, IndexError) as exc:  # a box whose fields run past its end
                    raise BoxError(f"malformed moof: {exc}") from None
                out.append(Segment("media", seg, key, dt))
            # styp, sidx, mfra, free: not needed by MSE here; dropped
        return out
