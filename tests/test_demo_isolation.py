"""Production never imports the demo: the simulator is reached through configuration only.

Checked two ways: statically (every import statement, including ones inside functions, which a
sys.modules check misses until that code runs) and at run time (a fresh interpreter imports every
production module and starts the field feeds from the deployment configuration).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from spine.servers.managed import free_port
from tests.stack import ROOT, free_udp_port

DEMO = "feeds.simulator"
PRODUCTION_PACKAGES = ("config", "dashboard", "feeds", "gateway", "layouts", "spine", "vision", "widgets")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _repo_modules() -> dict[str, Path]:
    found = {}
    for pkg in PRODUCTION_PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            found[_module_name(path)] = path
    return found


def _imports(path: Path, module: str) -> set[str]:
    """Every module an import statement anywhere in the file names (absolute and relative)."""
    out: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names}
    return out


def _is_demo(name: str) -> bool:
    return name == DEMO or name.startswith(DEMO + ".")


def _graph() -> dict[str, set[str]]:
    modules = _repo_modules()
    return {m: {i for i in _imports(p, m) if i in modules} for m, p in modules.items()}


def test_no_production_module_imports_the_simulator_anywhere() -> None:
    offenders = {
        m: sorted(i for i in _imports(p, m) if _is_demo(i))
        for m, p in _repo_modules().items()
        if not _is_demo(m)
    }
    assert {m: i for m, i in offenders.items() if i} == {}


def test_field_feeds_do_not_reach_the_simulator_and_there_is_no_cycle() -> None:
    graph = _graph()
    seen, todo = set(), ["feeds.field"]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += graph.get(m, ())
    assert not [m for m in seen if _is_demo(m)], "feeds.field reaches the demo simulator"
    # Nothing the simulator imports leads back into it through production code (the old
    # feeds.field -> feeds.simulator.wire -> feeds.simulator.run -> feeds.field loop).
    for start in [m for m in graph if _is_demo(m)]:
        stack, visited = [i for i in graph[start] if not _is_demo(i)], set()
        while stack:
            m = stack.pop()
            if m in visited:
                continue
            visited.add(m)
            assert not _is_demo(m) or m == start
            stack += [i for i in graph.get(m, ()) if not _is_demo(i) or i == start]
        assert start not in visited, f"import cycle through {start}"


RUNTIME_CHECK = r"""
import importlib, json, sys
names = [n for n in json.loads(sys.argv[2]) if not n.startswith(("feeds.simulator", "layouts", "widgets"))]
failed = {}
for n in names:
    try:
        importlib.import_module(n)
    except Exception as exc:  # a module mid-edit or an optional extra; the static test still reads
        failed[n] = repr(exc)  # such a module's imports
from config.root import load_config
from feeds.field import FieldRunner
root = load_config()
runner = FieldRunner(sys.argv[1], root.feeds).start()
runner.stop()
print(json.dumps({"imported": len(names) - len(failed), "failed": failed,
                  "profiles": list(root.profiles), "adapters": [a.source for a in runner.adapters],
                  "demo": sorted(m for m in sys.modules if m.startswith("feeds.simulator"))}))
"""


def test_a_fresh_interpreter_runs_the_feeds_part_without_loading_the_simulator(redis_url: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "CC_FEEDS__DRONE__LISTEN": f"127.0.0.1:{free_udp_port()}",
           "CC_FEEDS__SENSORS__BROKER_URL": f"mqtt://127.0.0.1:{free_port()}",
           "CC_FEEDS__SENSORS__START_PRIVATE_BROKER": "false"}
    names = json.dumps([*sorted(m for m in _repo_modules() if not m.endswith("__main__")), "app"])
    r = subprocess.run([sys.executable, "-c", RUNTIME_CHECK, redis_url, names], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["demo"] == [], got
    assert got["profiles"] == [] and got["imported"] > 40, got
    # Without the demo overlay nothing points the pull sources anywhere, so they do not run.
    assert got["adapters"] == ["mavlink", "mqtt_sensors"]
