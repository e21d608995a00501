"""examples/options_demo with real command lines: the Tornado options
example (TORNADO_EXAMPLES.md E5) as a user runs it.

The demo defines --port (default 8888, "run on the given port"), --debug,
--name, --timeout, --extra-ports and --config, parses the command line and
prints "name=value" lines.
"""
import os
import subprocess

import pytest

BUILD_DIR = os.environ.get("GUST_BUILD_DIR")


@pytest.fixture(scope="module")
def demo():
    if not BUILD_DIR:
        pytest.fail("GUST_BUILD_DIR is not set (run through ctest)")
    path = os.path.join(BUILD_DIR, "examples", "options_demo")
    assert os.access(path, os.X_OK), path
    return path


def run(demo, *args):
    # GUST_LOG_LEVEL would change --logging's default: run without it.
    env = {k: v for k, v in os.environ.items() if k != "GUST_LOG_LEVEL"}
    return subprocess.run([demo, *args], capture_output=True, text=True,
                          timeout=30, env=env)


def values(stdout):
    out = {}
    for line in stdout.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out.setdefault(k, v)
    return out


def test_defaults(demo):
    r = run(demo)
    assert r.returncode == 0, r.stderr
    v = values(r.stdout)
    assert v["port"] == "8888"
    assert v["debug"] == "false"
    assert v["timeout"] == "30"


@pytest.mark.parametrize("args", [["--port=9000"], ["--port", "9000"],
                                  ["-port=9000"], ["--port=1", "--port=9000"]])
def test_port_forms(demo, args):
    r = run(demo, *args)
    assert r.returncode == 0, r.stderr
    assert values(r.stdout)["port"] == "9000"


def test_all_types_and_positional(demo):
    r = run(demo, "--port", "81", "--debug", "--name=web 1", "--timeout=1.5min",
            "--extra-ports=8000:8002,9000", "--", "--not-an-option", "x")
    assert r.returncode == 0, r.stderr
    v = values(r.stdout)
    assert v["port"] == "81"
    assert v["debug"] == "true"
    assert v["name"] == "web 1"
    assert v["timeout"] == "90"
    assert v["extra-ports"] == "8000,8001,8002,9000"
    assert [l for l in r.stdout.splitlines() if l.startswith("arg=")] == \
        ["arg=--not-an-option", "arg=x"]
    # The parse callback ran once, after the final parse.
    assert r.stdout.splitlines().count("parsed") == 1


def test_help(demo):
    r = run(demo, "--help")
    assert r.returncode == 0
    assert r.stdout.startswith("Usage: options_demo [OPTIONS]")
    line = [l for l in r.stdout.splitlines() if l.strip().startswith("--port")]
    assert len(line) == 1
    assert "--port=INT" in line[0]
    assert "run on the given port (default 8888)" in line[0]
    # Logging options are there, in their own group after the program's.
    assert r.stdout.index("options_demo options:") < r.stdout.index("log options:")
    assert "--logging=LEVEL" in r.stdout
    assert "--log-file-prefix=PATH" in r.stdout
    # Help only: no values printed.
    assert "port=" not in r.stdout.replace("--port=", "")


def test_unknown_option(demo):
    r = run(demo, "--prot=1")
    assert r.returncode == 2
    assert "unknown option --prot (did you mean --port?)" in r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("arg,why", [
    ("--port=abc", "bad value for --port: 'abc' is not an integer"),
    ("--debug=maybe", "bad value for --debug: 'maybe' is not a boolean"),
    ("--timeout=soon", "bad value for --timeout: 'soon' is not a duration"),
    ("--logging=loud", "bad value for --logging: 'loud'"),
])
def test_bad_value(demo, arg, why):
    r = run(demo, arg)
    assert r.returncode == 2
    assert why in r.stderr
    assert r.stdout == ""


def test_missing_value(demo):
    r = run(demo, "--port")
    assert r.returncode == 2
    assert "option --port needs a value" in r.stderr


def test_config_file_and_override(demo, tmp_path):
    conf = tmp_path / "app.conf"
    conf.write_text('# demo settings\n'
                    'port = 7000\n'
                    'name = "quoted \\"name\\""   # comment\n'
                    '\n'
                    'debug = yes\n'
                    'extra_ports = 1:3\n')
    r = run(demo, f"--config={conf}")
    assert r.returncode == 0, r.stderr
    v = values(r.stdout)
    assert v["port"] == "7000"
    assert v["name"] == 'quoted "name"'
    assert v["debug"] == "true"
    assert v["extra-ports"] == "1,2,3"
    # The command line wins over the file.
    r = run(demo, f"--config={conf}", "--port=9000")
    assert r.returncode == 0, r.stderr
    assert values(r.stdout)["port"] == "9000"


def test_config_file_error(demo, tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("port = 7000\nport 7001\n")
    r = run(demo, "--config", str(conf))
    assert r.returncode == 2
    assert f"{conf}:2: expected 'name = value'" in r.stderr
    conf.write_text("# x\n\nprot = 1\n")
    r = run(demo, "--config", str(conf))
    assert r.returncode == 2
    assert f"{conf}:3: unknown option prot (did you mean port?)" in r.stderr


def test_log_file_prefix(demo, tmp_path):
    log = tmp_path / "demo.log"
    r = run(demo, f"--log-file-prefix={log}", "--port=9001")
    assert r.returncode == 0, r.stderr
    assert "would listen" not in r.stderr
    text = log.read_text()
    assert text.startswith("[I ")
    assert " demo] would listen on port 9001\n" in text
    # --log-to-stderr writes to both.
    r = run(demo, f"--log-file-prefix={log}", "--log-to-stderr", "--port=9002")
    assert " demo] would listen on port 9002" in r.stderr
    assert " demo] would listen on port 9002" in log.read_text()


def test_logging_level(demo):
    r = run(demo, "--port=9003")
    assert "would listen on port 9003" in r.stderr
    r = run(demo, "--port=9003", "--logging=warning")
    assert r.returncode == 0
    assert "would listen" not in r.stderr
