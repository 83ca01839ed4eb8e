"""Entry point of the Incheon control room.

    python app.py --demo               the embedded demo: private Redis, SQLite, the simulated city
                                       (CC_PROFILE=demo: config/overlays/demo.yaml), field adapters,
                                       vision, live gateway and web server; Ctrl-C stops them all
    python app.py                      the same stack on the deployment's configuration (no simulator)
    python app.py --only web           one part (web | gateway | feeds | vision | alarms | simulator), for
                                       deployments that spread parts over machines (needs REDIS_URL);
                                       feeds = the field adapters, from configuration alone;
                                       simulator = the demo city's wire servers (demo only);
                                       alarms = the alarm service (event stream -> SQL -> live channel)
                                       incidents = the incident service (docs/incidents.md)
                                       history = the history writer (streams -> SQL, docs/history.md)
    python app.py user add NAME --role operator|supervisor|commander|admin
    python app.py user passwd NAME | user disable NAME | user enable NAME | user list
    python app.py device-token create NAME [--role operator] | device-token revoke NAME
    python app.py device-token list    (passwd, disable and revoke end the sessions concerned)
    python app.py incident cap ID [--type Update] [--agency 119] [--out FILE]   CAP 1.2 of an incident
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
from spine.servers.embedded_mqtt import EmbeddedMosquitto
from spine.servers.embedded_redis import EmbeddedRedis
from spine.servers.supervision import RestartPolicy

ROOT = Path(__file__).resolve().parent
PARTS = ("simulator", "feeds", "vision", "alarms", "incidents", "history", "gateway", "web")  # in start order
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
    elif part == "alarms":
        from alarms.service import main

        main(_redis_url(settings), settings.database.resolved_url())
    elif part == "incidents":
        from incidents.service import main as incidents_main

        incidents_main(_redis_url(settings), settings.database.resolved_url())
    elif part == "history":
        from history.writer import main as history_main

        history_main(_redis_url(settings), settings.database.resolved_url())
    elif part == "gateway":
        from dashboard.store import Store
        from gateway import main
        from vision.config import load_vision_config

        store = Store.from_settings(settings)
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

        app = create_app(settings, Store.from_settings(settings), secret_key())
        log.info("web server on http://%s:%d/", settings.web.host, settings.web.port)
        serve(app.server, host=settings.web.host, port=settings.web.port,
              threads=settings.web.threads, ident="controlroom", max_request_body_size=1 << 20)


def _first_admin(settings: Settings) -> str | None:
    """On a fresh database make an admin with a random password (never a fixed default)."""
    from dashboard.store import Store

    store = Store.from_settings(settings)
    if store.list_users():
        return None
    password = secrets.token_urlsafe(12)
    store.add_user("admin", password, "admin")
    store.audit("system:first-start", "user_add", "admin", detail="role=admin")
    path = DATA_DIR / "initial-admin-password"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    return password


class Stack:
    """Starts and supervises the parts as child processes; restarts one that dies.

    The private servers come first: Redis (when no REDIS_URL is set) and, for the demo or where no
    broker answers, Mosquitto. Each part gets its own credentials in its environment: REDIS_URL with
    its ACL user (spine/servers/redis_acl.py) and, for the feeds and simulator parts, a broker URL with
    the MQTT user that may only read, or only publish. A dead Redis is restarted on the next tick,
    whatever parts are waiting out their back-off: those restarts are deadlines, never sleeps.
    """

    def __init__(self, settings: Settings, commands: dict[str, list[str]] | None = None,
                 policy: RestartPolicy | None = None, tick_s: float = 0.1) -> None:
        self.settings = settings
        self.env = dict(os.environ)
        self.part_env: dict[str, dict[str, str]] = {}
        parts = stack_parts(settings)
        self.commands = commands or {p: [sys.executable, str(ROOT / "app.py"), "--only", p] for p in parts}
        self.policy = policy or RestartPolicy()
        self.tick_s = tick_s
        self.children: dict[str, subprocess.Popen] = {}
        self.started_at: dict[str, float] = {}
        self.restart_at: dict[str, float] = {}  # part -> monotonic deadline of its scheduled restart
        self.spawned: list[tuple[str, float]] = []  # (part, monotonic time): the restart history
        self.deaths: list[tuple[str, float, float]] = []  # (part, seconds it ran, restart delay given)
        self.redis: EmbeddedRedis | None = None
        self.mqtt: EmbeddedMosquitto | None = None
        self._server_retry_at = 0.0
        self.stopping = False

    def _env(self, part: str) -> dict[str, str]:
        return {**self.env, **self.part_env.get(part, {})}

    def _spawn(self, part: str) -> None:
        from spine.servers.managed import die_with_parent

        self.children[part] = subprocess.Popen(
            self.commands[part], env=self._env(part), cwd=ROOT,
            preexec_fn=die_with_parent, stdin=subprocess.DEVNULL)
        now = time.monotonic()
        self.started_at[part] = now
        self.spawned.append((part, now))

    def _start_mqtt(self) -> None:
        """The demo's sensors and adapters meet on a private broker with password auth and ACLs."""
        from feeds.field import load_feeds_config
        from feeds.sensors.broker import broker_address, broker_credentials
        from spine.servers.embedded_mqtt import broker_answers

        sensors = load_feeds_config().sensors
        if not (sensors.enabled and sensors.start_private_broker and "feeds" in self.commands):
            return
        if broker_credentials(sensors.broker_url):
            return  # a deployment's broker, with its own credentials
        demo = "simulator" in self.commands
        if not demo and broker_answers(*broker_address(sensors.broker_url)):
            return
        self.mqtt = EmbeddedMosquitto(DATA_DIR / "mosquitto", topic_prefixes=(sensors.topic_prefix,))
        self.mqtt.start()
        self.part_env.setdefault("feeds", {})["CC_FEEDS__SENSORS__BROKER_URL"] = self.mqtt.url_for("feeds")
        self.part_env.setdefault("simulator", {})["CC_SIMULATOR__MQTT_URL"] = self.mqtt.url_for("sensors")

    def start(self) -> None:
        from spine.servers.credentials import private_dir
        from spine.servers.redis_acl import PART_USER

        private_dir(DATA_DIR)
        if not self.settings.redis.url:
            self.redis = EmbeddedRedis(DATA_DIR / "redis", persist=self.settings.redis.persist)
            self.redis.start()
            for part in self.commands:
                if part in PART_USER:
                    self.part_env.setdefault(part, {})["REDIS_URL"] = self.redis.part_url(part)
            self.env.pop("REDIS_URL", None)  # a part without a user of its own gets no access
        self._start_mqtt()
        password = _first_admin(self.settings)
        for part in self.commands:
            self._spawn(part)
        web = self.settings.web
        log.info("control room starting: open http://%s:%d/ (Ctrl-C stops everything)",
                 web.host, web.port)
        if password:
            log.info("first start: created user 'admin' with password %s (also in %s)",
                     password, DATA_DIR / "initial-admin-password")

    def _check_servers(self) -> None:
        """Restart a dead private server on its port at once; a failed start is retried next tick."""
        now = time.monotonic()
        for server in (self.redis, self.mqtt):
            if server is None or server.proc is None or server.proc.poll() is None:
                continue
            if now < self._server_retry_at:
                continue
            log.warning("private %s exited (%s); restarting it on port %d", server.name,
                        server.proc.returncode, server.port)
            try:
                server.start()
            except RuntimeError as exc:  # e.g. the port is briefly taken
                self._server_retry_at = now + 0.5
                log.error("private %s did not restart: %s; retrying", server.name, exc)

    def supervise_once(self) -> None:
        self._check_servers()  # first, and never behind a part's back-off
        now = time.monotonic()
        for part, proc in list(self.children.items()):
            if self.stopping:
                return
            due = self.restart_at.get(part)
            if due is not None:
                if now >= due:
                    del self.restart_at[part]
                    self._spawn(part)
                continue
            if proc.poll() is not None:
                ran = now - self.started_at.get(part, now)
                wait = self.policy.delay(part, ran)
                self.restart_at[part] = now + wait
                self.deaths.append((part, ran, wait))
                log.warning("%s exited with %s after %.1fs; restarting in %.1fs", part, proc.returncode,
                            ran, wait)

    def supervise(self) -> None:
        while not self.stopping:
            self.supervise_once()
            time.sleep(self.tick_s)

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
        for server in (self.mqtt, self.redis):
            if server:
                server.stop()
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


def _cli_actor() -> str:
    """Who ran a CLI change, for the audit log: the operating-system account."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        name = f"uid{os.getuid()}"
    return f"cli:{name}"[:64]


def admin_command(args: argparse.Namespace, settings: Settings) -> int:
    """User and wall-token administration. Every change is audited as "cli:<os user>" and every
    change that takes access away (passwd, disable, revoke) ends the sessions it concerns: their
    pages are refused at the next request and their live sockets close within seconds."""
    from dashboard.store import Store

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATA_DIR.chmod(0o700)  # the SQLite file, the secret key and snapshots live here
    store = Store.from_settings(settings)
    actor = _cli_actor()
    try:
        if args.cmd == "user" and args.action == "add":
            store.add_user(args.name, _read_password(args), args.role)
            store.audit(actor, "user_add", args.name, detail=f"role={args.role}")
            print(f"user {args.name} ({args.role}) created")
        elif args.cmd == "user" and args.action == "passwd":
            ended = store.set_password(args.name, _read_password(args))
            store.audit(actor, "user_passwd", args.name, detail=f"sessions_ended={ended}")
            print(f"password of {args.name} changed; {ended} session(s) ended")
        elif args.cmd == "user" and args.action in ("disable", "enable"):
            ended = store.set_active(args.name, args.action == "enable")
            store.audit(actor, f"user_{args.action}", args.name, detail=f"sessions_ended={ended}")
            print(f"user {args.name} {args.action}d" + (f"; {ended} session(s) ended" if ended else ""))
        elif args.cmd == "user" and args.action == "list":
            for u in store.list_users():
                print(f"{u.username}\t{u.role}\t{'active' if u.active else 'disabled'}")
        elif args.cmd == "device-token" and args.action == "create":
            token = store.create_device_token(args.name, args.role, created_by=actor)
            store.audit(actor, "device_token_create", args.name, detail=f"role={args.role}")
            web = settings.web
            print(f"device token for {args.name} ({args.role}); shown once, store it on the screen:")
            print(f"  http://{web.host}:{web.port}/device/login?token={token}&next=/wall/1")
        elif args.cmd == "device-token" and args.action == "revoke":
            if not store.revoke_device_token(args.name):
                print(f"no device token named {args.name}", file=sys.stderr)
                return 1
            store.audit(actor, "device_token_revoke", args.name)
            print(f"device token {args.name} revoked; its screens' sessions ended")
        elif args.cmd == "device-token" and args.action == "list":
            for t in store.list_device_tokens():
                used = t.last_used.strftime("%Y-%m-%d %H:%M") if t.last_used else "never used"
                print(f"{t.name}\t{t.role}\t{'revoked' if t.revoked else 'active'}\t{used}")
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
    for action, what in (("disable", "refuse the user's logins and end their sessions"),
                         ("enable", "allow the user's logins again")):
        user.add_parser(action, help=what).add_argument("name")
    dev = sub.add_parser("device-token", help="long-lived logins for wall screens")
    dev_sub = dev.add_subparsers(dest="action", required=True)
    create = dev_sub.add_parser("create")
    create.add_argument("name")
    create.add_argument("--role", choices=ROLES, default="operator")
    revoke = dev_sub.add_parser("revoke", help="end the screen's sessions; its token no longer works")
    revoke.add_argument("name")
    dev_sub.add_parser("list")
    from incidents.cli import add_parser as add_incident_parser

    add_incident_parser(sub)  # incident cap ID (docs/incidents.md)
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
    from spine.servers.credentials import private_dir

    # 0700 before any part writes into it: every part and the CLI (not only the full stack, and not
    # only when the database is a file there) keep data/ closed to other local users.
    private_dir(DATA_DIR)
    if args.cmd == "incident":
        from incidents.cli import run as incident_command

        return incident_command(args, settings)
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
