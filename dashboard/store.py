"""SQL storage through SQLAlchemy: users, wall device tokens and the audit log.

SQLite is the embedded default; PostgreSQL is used by setting DATABASE_URL.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import DateTime, Integer, String, Text, create_engine, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

Role = Literal["operator", "supervisor", "commander", "admin"]
ROLES: tuple[str, ...] = ("operator", "supervisor", "commander", "admin")

_hasher = PasswordHasher()


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


class AuditEntry(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now, index=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(32))  # login, login_failed, view_camera, ...
    target: Mapped[str] = mapped_column(String(128), default="")
    remote_addr: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[str] = mapped_column(Text, default="")


class Store:
    def __init__(self, url: str) -> None:
        self.engine: Engine = create_engine(url, pool_pre_ping=True)
        Base.metadata.create_all(self.engine)
        self.session = sessionmaker(self.engine, expire_on_commit=False)

    # ---- users ------------------------------------------------------------------------------

    def add_user(self, username: str, password: str, role: str) -> User:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
        if not username or len(username) > 64:
            raise ValueError("username must be 1-64 characters")
        if len(password) < 8:
            raise ValueError("password must be at least 8 characters")
        with self.session() as s, s.begin():
            if s.scalar(select(User).where(User.username == username)):
                raise ValueError(f"user {username!r} exists already")
            user = User(username=username, password_hash=_hasher.hash(password), role=role)
            s.add(user)
        return user

    def set_password(self, username: str, password: str) -> None:
        if len(password) < 8:
            raise ValueError("password must be at least 8 characters")
        with self.session() as s, s.begin():
            user = s.scalar(select(User).where(User.username == username))
            if user is None:
                raise ValueError(f"no user {username!r}")
            user.password_hash = _hasher.hash(password)

    def get_user(self, username: str) -> User | None:
        with self.session() as s:
            return s.scalar(select(User).where(User.username == username, User.active))

    def list_users(self) -> list[User]:
        with self.session() as s:
            return list(s.scalars(select(User).order_by(User.username)))

    def authenticate(self, username: str, password: str) -> User | None:
        user = self.get_user(username)
        if user is None:
            _hasher.hash(password)  # same cost either way, so timing does not reveal names
            return None
        try:
            _hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        return user

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

    def revoke_device_token(self, name: str) -> bool:
        with self.session() as s, s.begin():
            row = s.scalar(select(DeviceToken).where(DeviceToken.name == name))
            if row is None:
                return False
            row.revoked = True
            return True

    # ---- audit ------------------------------------------------------------------------------

    def audit(self, username: str, action: str, target: str = "", remote_addr: str = "",
              detail: str = "") -> None:
        with self.session() as s, s.begin():
            s.add(AuditEntry(username=username, action=action, target=target,
                             remote_addr=remote_addr or "", detail=detail))

    def audit_entries(self, limit: int = 100, action: str | None = None) -> list[AuditEntry]:
        with self.session() as s:
            q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
            if action:
                q = q.where(AuditEntry.action == action)
            return list(s.scalars(q))
