"""Node.js for the integration tests: Node's `ws` package and playwright-core
(driving Debian's /usr/bin/chromium) from the npm folder `make test`
installs, and the scripts in js/ that use them.

    from node_helpers import run_js, spawn_js
    report = run_js(build_dir, "ws_client.js", url, json.dumps(plan))
    server = spawn_js(spawn, build_dir, "ws_server.js", str(port))

Where the packages are: $GUST_NODE_MODULES if set, else
<dirname of GUST_BUILD_DIR>/npm/node_modules (the Makefile's $(BUILD)/npm,
filled by `npm ci` from js/package-lock.json). A missing folder fails the
test with the command that installs it: a test that needs a browser must not
pass for want of one.
"""
import json
import os
import shutil
import subprocess

import pytest

JS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js")
CHROMIUM = "/usr/bin/chromium"


def node_modules(build_dir):
    """The node_modules folder holding ws and playwright-core."""
    path = os.environ.get("GUST_NODE_MODULES") or os.path.join(
        os.path.dirname(os.path.abspath(build_dir)), "npm", "node_modules")
    for package in ("ws", "playwright-core"):
        if not os.path.isdir(os.path.join(path, package)):
            pytest.fail(f"{package} is not installed in {path}: run `make "
                        "deps-npm` (part of `make test`)")
    return path


def node_env(build_dir, **extra):
    """The environment for node: NODE_PATH to the installed packages."""
    if not shutil.which("node"):
        pytest.fail("node is not on PATH (Node.js >= 20 is needed)")
    env = dict(os.environ)
    env["NODE_PATH"] = node_modules(build_dir)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_js(build_dir, script, *args, timeout=90, env=None):
    """Runs js/SCRIPT with ARGS to completion (at most timeout seconds) and
    returns the JSON value it printed last (see js/run.js). Fails the test,
    with the script's stderr, if it exits non-zero or prints no JSON."""
    try:
        proc = subprocess.run(
            ["node", os.path.join(JS_DIR, script), *map(str, args)],
            capture_output=True, text=True, timeout=timeout,
            env=node_env(build_dir, **(env or {})), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{script} did not finish within {timeout} s:\n"
                    f"{e.stderr or ''}")
    if proc.returncode != 0:
        pytest.fail(f"{script} {' '.join(map(str, args))[:300]} exited with "
                    f"{proc.returncode}:\n{proc.stderr}\n{proc.stdout[-2000:]}")
    lines = proc.stdout.strip().splitlines()
    if not lines:
        pytest.fail(f"{script} printed nothing:\n{proc.stderr}")
    return json.loads(lines[-1])


def spawn_js(spawn, build_dir, script, *args, env=None):
    """Starts js/SCRIPT in the background through conftest's spawn fixture
    (so it is killed by PID at the end of the test); returns the Server."""
    return spawn(["node", os.path.join(JS_DIR, script), *map(str, args)],
                 env=node_env(build_dir, **(env or {})))


def json_events(server):
    """The JSON lines a js/ server printed so far, as a list of dicts."""
    events = []
    for line in server.log().splitlines():
        line = line.strip()
        if line.startswith("{"):
            events.append(json.loads(line))
    return events
