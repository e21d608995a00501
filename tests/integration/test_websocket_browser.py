"""examples/ws_echo in headless Chromium (Debian's /usr/bin/chromium driven
by playwright-core from npm, js/ws_echo_page.js): the page's own script
opens the socket, a line typed into the page comes back and is shown; from
the page, text and binary messages and a 1 MiB message echo unchanged over a
socket with permessage-deflate (Chromium offers it; Gust must accept).
Only 127.0.0.1; every wait is bounded."""
import os
import signal
import uuid

import pytest

from node_helpers import CHROMIUM, run_js


@pytest.fixture
def ws_echo(spawn, program, free_port):
    server = spawn([program("ws_echo"), f"--port={free_port}",
                    "--address=127.0.0.1", "--compression"])
    server.wait_log("listening on")
    yield free_port, server
    status = server.stop(signal.SIGTERM)
    assert status == 0, server.log()
    assert "Sanitizer" not in server.log(), server.log()


def test_echo_page_in_chromium(build_dir, ws_echo):
    assert os.access(CHROMIUM, os.X_OK), "chromium missing (make deps-test)"
    port, _ = ws_echo
    line = f"typed in chromium {uuid.uuid4().hex[:8]} ✓"
    report = run_js(build_dir, "ws_echo_page.js", f"http://127.0.0.1:{port}/",
                    line, timeout=120)
    page = report["page_socket"]
    assert page["url"] == f"ws://127.0.0.1:{port}/ws", page
    # What the user typed went out on the page's socket, came back on it,
    # and is on the screen.
    assert any(line in p for p in page["sent"]), page
    assert any(line in p for p in page["received"]), page
    assert report["line_shown"], report["page_text"]

    own = report["own"]
    assert own["extensions"].startswith("permessage-deflate"), own
    assert own["text_ok"], own
    assert own["binary_ok"] and own["binary_length"] == 256000, own
    assert own["large_ok"], own
    assert (own["close_code"], own["close_clean"]) == (1000, True), own
