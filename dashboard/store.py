"""SQL storage through SQLAlchemy: users, wall device tokens, login sessions and the audit log.

SQLite is the embedded default (its file created 0600); PostgreSQL is used by setting DATABASE_URL.

Sessions live here, not in the cookie: the cookie carries only a random session id, and every
request and every open live socket is checked against this table, so logout, a password change,
disabling a user or revoking a wall's token ends access at once instead of when a cookie expires.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import (
    DateTime,
    Integer,
    Select,
    String,
    Text,
    and_,
    create_engine,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from config.settings import ROLES  # one home for the role names

if TYPE_CHECKING:
    from config.settings import Settings

SessionKind = Literal["user", "device"]
LANGS: tuple[str, ...] = ("ko", "en")  # interface languages (dashboard/i18n.py)

SESSION_ID_MAX = 64  # longer ids are never ours: refused without a query
# Ours are URL-safe base64 (token_urlsafe); anything else (NUL bytes, quotes, huge strings) is
# refused before it reaches the database, where PostgreSQL would raise on a NUL.
_SESSION_ID = re.compile(rf"[A-Za-z0-9_-]{{1,{SESSION_ID_MAX}}}")
LAST_SEEN_EVERY = timedelta(seconds=60)  # last_seen is written at most this often per session
DEVICE_SESSION_MAX = timedelta(days=366)  # a wall's cookie lasts a year; its session no longer
_IN_CHUNK = 500  # ids per IN (...) list: bounded statements whatever the caller passes
SESSION_KEEP = timedelta(days=90)  # ended sessions stay this long for investigations, then go
PRUNE_EVERY_S = 3600.0


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class UserPref(Base):
    """A person's or a screen's interface choices. A table of its own, not a column of `users`:
    create_all adds a missing table to an existing database but never alters one, so a store made
    by an older version gains it at the next start without a migration step."""

    __tablename__ = "user_prefs"
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)  # "user" | "device"
    principal: Mapped[str] = mapped_column(String(64), primary_key=True)
    lang: Mapped[str] = mapped_column(String(8), default="ko")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, onupdate=_now)


class DeviceToken(Base):
    """A long-lived login for one wall screen; only the token's SHA-256 is stored."""

    __tablename__ = "device_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16), default="operator")
    created_by: Mapped[str] = mapped_column(String(64), default="cli")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    last_used: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked: Mapped[bool] = mapped_column(default=False)


class LoginSession(Base):
    """One sign-in of a person or a wall screen. The id is the only thing the cookie holds."""

    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(SESSION_ID_MAX), primary_key=True)
    principal: Mapped[str] = mapped_column(String(64), index=True)  # user name or device name
    kind: Mapped[str] = mapped_column(String(8))  # "user" | "device"
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_reason: Mapped[str] = mapped_column(String(32), default="")
    remote_addr: Mapped[str] = mapped_column(String(64), default="")


@dataclass(frozen=True)
class ActiveSession:
    """A session that is valid right now, with the role its user or device has right now."""

    sid: str
    kind: str
    name: str
    role: str


class AuditEntry(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, index=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(32))  # login, login_failed, view_camera, ...
    target: Mapped[str] = mapped_column(String(128), default="")
    remote_addr: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[str] = mapped_column(Text, default="")


def _fit(value: object, size: int) -> str:
    return str(value or "").replace("\x00", "\ufffd")[:size]


def _is_session_id(value: object) -> bool:
    return isinstance(value, str) and _SESSION_ID.fullmatch(value) is not None


def password_hasher(time_cost: int = 3, memory_kib: int = 65536, parallelism: int = 4) -> PasswordHasher:
    """Argon2id with the given cost; the defaults are argon2-cffi's (RFC 9106 low-memory)."""
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)


def _private_sqlite_file(url: str) -> None:
    """Create the SQLite file (and its folder) private to this OS user before SQLite opens it.

    SQLite gives its journal and WAL files the database file's mode, so they follow.
    """
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return
    path = Path(parsed.database)
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)  # a file left readable by an older version is tightened too


class Store:
    def __init__(self, url: str, hasher: PasswordHasher | None = None,
                 user_session_hours: float = 12.0) -> None:
        _private_sqlite_file(url)
        self.engine: Engine = create_engine(url, pool_pre_ping=True)
        Base.metadata.create_all(self.engine)
        self.session = sessionmaker(self.engine, expire_on_commit=False)
        self.hasher = hasher or password_hasher()
        self.user_session_max = timedelta(hours=user_session_hours)
        self._pruned_at = 0.0  # monotonic; sessions are pruned on sign-in at most hourly

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        web = settings.web
        return cls(settings.database.resolved_url(),
                   password_hasher(web.argon2_time_cost, web.argon2_memory_kib, web.argon2_parallelism),
                   user_session_hours=web.session_hours)

    # ---- users ------------------------------------------------------------------------------

    def add_user(self, username: str, password: str, role: str) -> User:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
        if not username or len(username) > 64 or any(ord(c) < 32 or ord(c) == 127 for c in username):
            raise ValueError("username must be 1-64 characters, none of them control characters")
        if len(password) < 8:
            raise ValueError("password must be at least 8 characters")
        with self.session() as s, s.begin():
            if s.scalar(select(User).where(User.username == username)):
                raise ValueError(f"user {username!r} exists already")
            user = User(username=username, password_hash=self.hasher.hash(password), role=role)
            s.add(user)
        return user

    def set_password(self, username: str, password: str) -> int:
        """Change the password and end every session of the user; returns the sessions ended."""
        if len(password) < 8:
            raise ValueError("password must be at least 8 characters")
        with self.session() as s, s.begin():
            user = s.scalar(select(User).where(User.username == username))
            if user is None:
                raise ValueError(f"no user {username!r}")
            user.password_hash = self.hasher.hash(password)
            return self._revoke_where(s, "password_changed", LoginSession.kind == "user",
                                      LoginSession.principal == username)

    def set_active(self, username: str, active: bool) -> int:
        """Enable or disable a user. Disabling ends every session of the user at once (enabling
        does not bring them back); returns the sessions ended."""
        with self.session() as s, s.begin():
            user = s.scalar(select(User).where(User.username == username))
            if user is None:
                raise ValueError(f"no user {username!r}")
            user.active = active
            if active:
                return 0
            return self._revoke_where(s, "user_disabled", LoginSession.kind == "user",
                                      LoginSession.principal == username)

    def get_user(self, username: str) -> User | None:
        if not isinstance(username, str) or not 0 < len(username) <= 64 or "\x00" in username:
            return None  # no such user can exist; PostgreSQL would raise on a NUL or a long name
        with self.session() as s:
            return s.scalar(select(User).where(User.username == username, User.active))

    def list_users(self) -> list[User]:
        with self.session() as s:
            return list(s.scalars(select(User).order_by(User.username)))

    def authenticate(self, username: str, password: str) -> User | None:
        user = self.get_user(username)
        if user is None:
            self.hasher.hash(password)  # same cost either way, so timing does not reveal names
            return None
        try:
            self.hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        if self.hasher.check_needs_rehash(user.password_hash):
            # Made with other cost parameters: store it again at today's cost (no session ends).
            with self.session() as s, s.begin():
                s.execute(update(User).where(User.id == user.id)
                          .values(password_hash=self.hasher.hash(password)))
        return user

    # ---- preferences ------------------------------------------------------------------------

    def user_lang(self, principal: str, kind: str = "user") -> str | None:
        """The interface language a user (or device) chose, or None (the page's default)."""
        if not isinstance(principal, str) or not 0 < len(principal) <= 64 or "\x00" in principal:
            return None
        with self.session() as s:
            return s.scalar(select(UserPref.lang).where(UserPref.kind == kind,
                                                        UserPref.principal == principal))

    def set_user_lang(self, principal: str, kind: str, lang: str) -> None:
        if lang not in LANGS:
            raise ValueError(f"unknown language {lang!r}; one of {', '.join(LANGS)}")
        if kind not in ("user", "device") or not 0 < len(principal) <= 64 or "\x00" in principal:
            raise ValueError("not a user or device name")
        with self.session() as s, s.begin():
            row = s.get(UserPref, (kind, principal))
            if row is None:
                s.add(UserPref(kind=kind, principal=principal, lang=lang))
            else:
                row.lang = lang

    # ---- wall device tokens -----------------------------------------------------------------

    def create_device_token(self, name: str, role: str = "operator", created_by: str = "cli") -> str:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        token = secrets.token_urlsafe(32)
        with self.session() as s, s.begin():
            s.add(DeviceToken(name=name, token_sha256=hashlib.sha256(token.encode()).hexdigest(),
                              role=role, created_by=created_by))
        return token

    def check_device_token(self, token: str) -> DeviceToken | None:
        digest = hashlib.sha256(token.encode()).hexdigest()
        with self.session() as s, s.begin():
            row = s.scalar(select(DeviceToken).where(DeviceToken.token_sha256 == digest,
                                                     DeviceToken.revoked.is_(False)))
            if row is not None:
                row.last_used = _now()
            return row

    def device_token_by_name(self, name: str) -> DeviceToken | None:
        with self.session() as s:
            return s.scalar(select(DeviceToken).where(DeviceToken.name == name))

    def list_device_tokens(self) -> list[DeviceToken]:
        with self.session() as s:
            return list(s.scalars(select(DeviceToken).order_by(DeviceToken.name)))

    def revoke_device_token(self, name: str) -> bool:
        """Revoke the token and end every session the screen opened with it."""
        with self.session() as s, s.begin():
            row = s.scalar(select(DeviceToken).where(DeviceToken.name == name))
            if row is None:
                return False
            row.revoked = True
            self._revoke_where(s, "token_revoked", LoginSession.kind == "device",
                               LoginSession.principal == name)
            return True

    # ---- login sessions ---------------------------------------------------------------------

    def create_session(self, principal: str, kind: SessionKind, remote_addr: str = "") -> str:
        """A new session id (256 random bits, URL-safe) for a user or device that just signed in."""
        if kind not in ("user", "device"):
            raise ValueError(f"unknown session kind {kind!r}")
        sid = secrets.token_urlsafe(32)
        with self.session() as s, s.begin():
            s.add(LoginSession(id=sid, principal=principal, kind=kind, remote_addr=_fit(remote_addr, 64)))
        if time.monotonic() - self._pruned_at > PRUNE_EVERY_S:
            self.prune_sessions()
        return sid

    def prune_sessions(self, keep: timedelta = SESSION_KEEP) -> int:
        """Delete sessions that ended (revoked or expired) longer than `keep` ago; returns how many."""
        self._pruned_at = time.monotonic()
        now = _now()
        user_gone, device_gone = now - self.user_session_max - keep, now - DEVICE_SESSION_MAX - keep
        with self.session() as s, s.begin():
            result = s.execute(delete(LoginSession).where(or_(
                LoginSession.revoked_at < now - keep,
                and_(LoginSession.kind == "user", LoginSession.created_at < user_gone),
                and_(LoginSession.kind == "device", LoginSession.created_at < device_gone),
            )))
            return int(result.rowcount or 0)

    def _valid_query(self, now: datetime) -> Select:
        """Sessions not ended, not too old, whose user is active or whose device token stands."""
        role = func.coalesce(User.role, DeviceToken.role)
        return (
            select(LoginSession.id, LoginSession.kind, LoginSession.principal, role)
            .outerjoin(User, and_(LoginSession.kind == "user", User.username == LoginSession.principal))
            .outerjoin(DeviceToken, and_(LoginSession.kind == "device",
                                         DeviceToken.name == LoginSession.principal))
            .where(LoginSession.revoked_at.is_(None))
            .where(or_(
                and_(LoginSession.kind == "user", User.active.is_(True),
                     LoginSession.created_at >= now - self.user_session_max),
                and_(LoginSession.kind == "device", DeviceToken.revoked.is_(False),
                     LoginSession.created_at >= now - DEVICE_SESSION_MAX),
            ))
        )

    def active_session(self, sid: str) -> ActiveSession | None:
        """The session behind a cookie, if it is valid now; notes when it was last seen."""
        if not _is_session_id(sid):
            return None
        now = _now()
        with self.session() as s:
            row = s.execute(self._valid_query(now).add_columns(LoginSession.last_seen)
                            .where(LoginSession.id == sid)).first()
        if row is None:
            return None
        seen = row[4] if row[4].tzinfo else row[4].replace(tzinfo=UTC)  # SQLite returns naive UTC
        if now - seen > LAST_SEEN_EVERY:
            # A write only once a minute per session: a read-only check on every other request
            # keeps SQLite's single writer lock free for logins and audit rows.
            with self.session() as s, s.begin():
                s.execute(update(LoginSession).where(LoginSession.id == sid).values(last_seen=now))
        return ActiveSession(sid=row[0], kind=row[1], name=row[2], role=row[3])

    def valid_sessions(self, sids: Iterable[str]) -> set[str]:
        """The subset of `sids` that is still valid (the gateway asks this for its open sockets)."""
        wanted = sorted({x for x in sids if _is_session_id(x)})
        valid: set[str] = set()
        now = _now()
        with self.session() as s:
            for i in range(0, len(wanted), _IN_CHUNK):
                chunk = wanted[i:i + _IN_CHUNK]
                valid.update(s.scalars(
                    self._valid_query(now).where(LoginSession.id.in_(chunk)).with_only_columns(
                        LoginSession.id)))
        return valid

    def revoke_session(self, sid: str, reason: str = "logout") -> bool:
        if not _is_session_id(sid):
            return False
        with self.session() as s, s.begin():
            return self._revoke_where(s, reason, LoginSession.id == sid) > 0

    def sessions_of(self, principal: str, kind: SessionKind = "user") -> list[LoginSession]:
        with self.session() as s:
            return list(s.scalars(select(LoginSession)
                                  .where(LoginSession.principal == principal, LoginSession.kind == kind)
                                  .order_by(LoginSession.created_at)))

    @staticmethod
    def _revoke_where(s: Session, reason: str, *conditions: ColumnElement[bool]) -> int:
        result = s.execute(update(LoginSession)
                           .where(LoginSession.revoked_at.is_(None), *conditions)
                           .values(revoked_at=_now(), revoked_reason=reason[:32]))
        return int(result.rowcount or 0)

    # ---- audit ------------------------------------------------------------------------------

    def audit(self, username: str, action: str, target: str = "", remote_addr: str = "",
              detail: str = "") -> None:
        # Values often come from requests: fitted to the columns (PostgreSQL refuses longer ones)
        # and NUL-free, so a hostile name is recorded instead of failing the request.
        with self.session() as s, s.begin():
            s.add(AuditEntry(username=_fit(username, 64), action=_fit(action, 32), target=_fit(target, 128),
                             remote_addr=_fit(remote_addr, 64), detail=_fit(detail, 4000)))

    def audit_entries(self, limit: int = 100, action: str | None = None) -> list[AuditEntry]:
        with self.session() as s:
            q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
            if action:
                q = q.where(AuditEntry.action == action)
            return list(s.scalars(q))
