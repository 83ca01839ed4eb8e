"""Entry point of the Incheon control room.

    python app.py --demo               the embedded demo: private Redis, SQLite, the simulated city
                                       (CC_PROFILE=demo: config/overlays/demo.yaml), field adapters,
                                       vision, live gateway and web server; Ctrl-C stops them all
    python app.py                      the same stack on the deployment's configuration (no simulator)
    python app.py --only web           one part (web | gateway | feeds | vision | simulator), for
                                       deployments that spread parts over machines (needs REDIS_URL);
                                       feeds = the field adapters, from configuration alone;
                                       simulator = the demo city's wire servers (demo only)
    python app.py user add NAME --role operator|supervisor|commander|admin
    python app.py user passwd NAME | user list
    python app.py device-token create NAME [--role operator] | device-token revoke NAME
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from config.settings import DATA_DIR, ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parent
PARTS = ("simulator", "feeds", "vision", "gateway", "web")  # every part, in start order
ONLY = PARTS
log = logging.getLogger("app")


def _setup_logging(part: str) -> None:
    logging.basicConfig(level=os.environ.get("CC_LOG_LEVEL", "INFO"),
                        format=f"%(asctime)s {part:>9} %(levelname)s %(name)s: %(message)s")


def stack_parts(settings: Settings) -> tuple[str, ...]:
    """The parts the embedded stack starts: the demo's simulator only when the configuration enables
    it (the demo overlay does); the adapters always run, pointed wherever the configuration says."""
    return tuple(p for p in PARTS if p != "simulator" or settings.simulator.enabled)


def _redis_url(settings: Settings) -> str:
    if not settings.redis.url:
        raise ConfigError("this part needs a Redis: set REDIS_URL (or run python app.py for the "
                          "embedded stack)")
    return settings.redis.url


def run_part(part: str, settings: Settings) -> None:
    from spine.tickets import secret_key

    if part == "simulator":
        from feeds.field import load_feeds_config
        from feeds.simulator.part import main

        main(_redis_url(settings), settings.simulator, load_feeds_config())
    elif part == "vision":
        from vision.worker import main

        main(_redis_url(settings))
    elif part == "feeds":
        from feeds.field import main

        main(_redis_url(settings))
    elif part == "gateway":
        from dashboard.store import Store
        from gateway import main
        from vision.config import load_vision_config

        store = Store(settings.database.resolved_url())
        cameras = {c.id for c in load_vision_config().cameras}
        # Sockets of a session that ended (logout, revoked token, disabled user) close within
        # seconds; a store without the check (older schema) leaves that sweep off.
        session_check = getattr(store, "valid_sessions", None)
        main(_redis_url(settings), settings.gateway, secret_key(),
             audit=lambda user, action, target, remote: store.audit(user, action, target, remote),
             cameras=cameras, session_check=session_check)
    elif part == "web":
        from waitress import serve

        from dashboard.app_factory import create_app
        from dashboard.store import Store

        app = create_app(settings, Store(settings.database.resolved_url()), secret_key())
        log.info("web server on http://%s:%d/", settings.web.host, settings.web.port)
        serve(app.server, host=settings.web.host, port=settings.web.port,
              threads=settings.web.threads, ident="controlroom")


def _first_admin(settings: Settings) -> str | None:
    """On a fresh database make an admin with a random password (never a fixed default)."""
    from dashboard.store import Store

    store = Store(settings.database.resolved_url())
    if store.list_users():
        return None
    password = secrets.token_urlsafe(12)
    store.add_user("admin", password, "admin")
    path = DATA_DIR / "initial-admin-password"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    return password


class Stack:
    """Starts and supervises the parts as child processes; restarts one that dies."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.env = dict(os.environ)
        self.children: dict[str, subprocess.Popen] = {}
        self.redis = None
        self.stopping = False

    def _spawn(self, part: str) -> None:
        from spine.servers.managed import die_with_parent

        self.children[part] = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "--only", part], env=self.env, cwd=ROOT,
            preexec_fn=die_with_parent, stdin=subprocess.DEVNULL)

    def start(self) -> None:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        if not self.settings.redis.url:
            from spine.servers.embedded_redis import EmbeddedRedis

            self.redis = EmbeddedRedis(DATA_DIR / "redis")
            self.env["REDIS_URL"] = self.redis.start()
        password = _first_admin(self.settings)
        for part in stack_parts(self.settings):
            self._spawn(part)
        web = self.settings.web
        log.info("control room starting: open http://%s:%d/ (Ctrl-C stops everything)",
                 web.host, web.port)
        if password:
            log.info("first start: created user 'admin' with password %s (also in %s)",
                     password, DATA_DIR / "initial-admin-password")

    def supervise(self) -> None:
        restarts: dict[str, float] = {}
        while not self.stopping:
            time.sleep(0.5)
            if self.redis and self.redis.proc and self.redis.proc.poll() is not None:
                log.warning("private Redis exited; restarting it on the same port")
                self.redis.start()
            for part, proc in list(self.children.items()):
                if proc.poll() is not None and not self.stopping:
                    wait = restarts.get(part, 0.5)
                    log.warning("%s exited with %s; restarting in %.1fs", part, proc.returncode, wait)
                    time.sleep(wait)
                    restarts[part] = min(wait * 2, 30.0)
                    self._spawn(part)

    def stop(self) -> None:
        self.stopping = True
        for proc in self.children.values():
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 8
        for proc in self.children.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.redis:
            self.redis.stop()
        log.info("stopped")


def run_stack(settings: Settings) -> None:
    stack = Stack(settings)

    def _terminate(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    try:
        stack.start()
        stack.supervise()
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat: "):
        raise SystemExit("passwords differ")
    return first


def admin_command(args: argparse.Namespace, settings: Settings) -> int:
    from dashboard.store import Store

    store = Store(settings.database.resolved_url())
    try:
        if args.cmd == "user" and args.action == "add":
            store.add_user(args.name, _read_password(args), args.role)
            print(f"user {args.name} ({args.role}) created")
        elif args.cmd == "user" and args.action == "passwd":
            store.set_password(args.name, _read_password(args))
            print(f"password of {args.name} changed")
        elif args.cmd == "user" and args.action == "list":
            for u in store.list_users():
                print(f"{u.username}\t{u.role}\t{'active' if u.active else 'disabled'}")
        elif args.cmd == "device-token" and args.action == "create":
            token = store.create_device_token(args.name, args.role)
            web = settings.web
            print(f"device token for {args.name} ({args.role}); shown once, store it on the screen:")
            print(f"  http://{web.host}:{web.port}/device/login?token={token}&next=/wall/1")
        elif args.cmd == "device-token" and args.action == "revoke":
            if not store.revoke_device_token(args.name):
                print(f"no device token named {args.name}", file=sys.stderr)
                return 1
            print(f"device token {args.name} revoked")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    from dashboard.store import ROLES

    p = argparse.ArgumentParser(description="Incheon control room")
    p.add_argument("--only", choices=ONLY, help="run one part instead of the whole stack")
    p.add_argument("--demo", action="store_true",
                   help="the demo profile (CC_PROFILE=demo): the simulated city, adapters pointed at it")
    sub = p.add_subparsers(dest="cmd")
    user = sub.add_parser("user", help="manage users").add_subparsers(dest="action", required=True)
    add = user.add_parser("add")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument("--password-stdin", action="store_true")
    pw = user.add_parser("passwd")
    pw.add_argument("name")
    pw.add_argument("--password-stdin", action="store_true")
    user.add_parser("list")
    dev = sub.add_parser("device-token", help="long-lived logins for wall screens")
    dev_sub = dev.add_subparsers(dest="action", required=True)
    create = dev_sub.add_parser("create")
    create.add_argument("name")
    create.add_argument("--role", choices=ROLES, default="operator")
    revoke = dev_sub.add_parser("revoke")
    revoke.add_argument("name")
    return p.parse_args(argv)


def _add_profile(name: str) -> None:
    profiles = [p for p in os.environ.get("CC_PROFILE", "").split(",") if p.strip()]
    if name not in profiles:
        os.environ["CC_PROFILE"] = ",".join([*profiles, name])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.demo:
        _add_profile("demo")  # in the environment, so every part the stack starts sees it too
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    if args.cmd:
        return admin_command(args, settings)
    _setup_logging(args.only or "stack")
    if args.only:
        run_part(args.only, settings)
    else:
        run_stack(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
