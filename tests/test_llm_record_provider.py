"""Issue 33, defects 8 and 9: recording from a provider other than the bundled model. A tiny
OpenAI-compatible server on 127.0.0.1 (no network) stands in for any provider: its ``/models``
needs a key, and every reply is ``no_action``."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from e3.errors import E3Error
from e3.llm.record import wait_for_server

KEY = "sk-test-issue33"


class _Provider(BaseHTTPRequestHandler):
    seen_keys: list[str | None] = []

    def log_message(self, *a):  # quiet
        pass

    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        auth = self.headers.get("Authorization")
        type(self).seen_keys.append(auth)
        if auth != f"Bearer {KEY}":
            return self._send(401, {"error": "key required"})
        return self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        self.rfile.read(n)
        self._send(200, {"id": "c1", "object": "chat.completion", "created": 0, "model": "fake",
                         "choices": [{"index": 0, "finish_reason": "stop", "message": {
                             "role": "assistant", "content": '{"name": "no_action", "arguments": {}}'}}],
                         "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}})


@pytest.fixture
def provider():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Provider)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()


def test_probe_sends_the_key_and_a_401_counts_as_an_answer(provider):
    _Provider.seen_keys.clear()
    wait_for_server(provider, timeout_s=5, api_key=KEY)
    wait_for_server(provider, timeout_s=5)  # 401: the server is up
    assert _Provider.seen_keys == [f"Bearer {KEY}", None]


def test_nothing_listening_fails_after_the_timeout_saying_so():
    lines = []
    with pytest.raises(E3Error, match=r"no server answered at http://127.0.0.1:9/v1 within 2 s \(last error"):
        wait_for_server("http://127.0.0.1:9/v1", timeout_s=2, progress=lines.append)


@pytest.mark.slow
def test_record_from_a_provider_labels_replies_with_its_own_identity(provider, tmp_path, monkeypatch, repo):
    from e3.cli import main

    monkeypatch.setenv("E3_TEST_PROVIDER_KEY", KEY)
    overlay = tmp_path / "o.yaml"
    overlay.write_text("simulation: {horizon_tasks: 40}\ncontrollers:\n  llm: {api_key_env: E3_TEST_PROVIDER_KEY, "
                       f"cache_dir: {tmp_path / 'cache'}}}\n")
    out = tmp_path / "r.jsonl"
    assert main(["llm", "record", "--no-serve", "--model", "openai/fake", "--api-base", provider, "--overlay",
                 str(overlay), "--scenarios", "warmup_30", "--seeds", "1", "--out", str(out), "--runs",
                 str(tmp_path / "runs")]) == 0
    entries = [json.loads(x) for x in out.read_text().splitlines()]
    assert entries
    for e in entries:
        info = e["request"]["model_info"]
        assert info["model"] == "openai/fake" and "gguf" not in info
        assert e["request"]["model"] == "openai/fake"
