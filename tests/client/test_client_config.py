"""Where the client gets its URL and key, what it says when the server is not there or not
Talkie, that keys stay out of messages, and that importing it stays light."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from client_harness import ThreadedServer

from talkie.client import TalkieApiError, TalkieClient
from talkie.errors import InvalidInputError, TalkieError

SECRET = "tk_abcdef123456_verysecretpart"


def _recording(
    seen: list[httpx.Request], respond: Callable[[httpx.Request], httpx.Response] | None = None
) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if respond is not None:
            return respond(request)
        return httpx.Response(200, json={"keys": []})

    return httpx.MockTransport(handler)


def _answering(
    respond: Callable[[httpx.Request], httpx.Response], timeout: float = 60.0
) -> TalkieClient:
    return TalkieClient("http://127.0.0.1:9", timeout=timeout, transport=_recording([], respond))


def test_key_from_environment(
    server: ThreadedServer, admin_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TALKIE_API_KEY", admin_key + "\n")  # pasted with a newline
    monkeypatch.setenv("TALKIE_URL", server.url + "/v1/")  # the API's base URL works too
    with TalkieClient() as talkie:
        assert talkie.url == server.url
        assert talkie.keys.list() and talkie.key_id == admin_key.split("_")[1]
    # an explicit key wins over the environment
    with (
        TalkieClient(server.url, api_key="tk_000000000000_nope") as talkie,
        pytest.raises(TalkieApiError) as excinfo,
    ):
        talkie.keys.list()
    assert excinfo.value.status == 401


def test_admin_key_file_of_a_local_server(
    server: ThreadedServer, admin_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TALKIE_DATA_DIR", str(server.data_dir))
    with TalkieClient(server.url) as talkie:
        assert talkie.key_id == admin_key.split("_")[1]
        assert talkie.keys.list()
    localhost = server.url.replace("127.0.0.1", "localhost")
    with TalkieClient(localhost) as talkie:
        assert talkie.key_id == admin_key.split("_")[1]


def test_admin_key_file_under_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TALKIE_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".talkie").mkdir()
    (tmp_path / ".talkie" / "admin.key").write_text(SECRET + "\n")
    seen: list[httpx.Request] = []
    with TalkieClient("http://127.0.0.1:9", transport=_recording(seen)) as talkie:
        talkie.keys.list()
    assert seen[0].headers["authorization"] == f"Bearer {SECRET}"


def test_admin_key_file_is_never_sent_to_another_machine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "admin.key").write_text(SECRET)
    monkeypatch.setenv("TALKIE_DATA_DIR", str(tmp_path))
    seen: list[httpx.Request] = []

    def unauthorized(request: httpx.Request) -> httpx.Response:
        body = {"error": {"code": "unauthorized", "message": "authentication required"}}
        return httpx.Response(401, json=body)

    with TalkieClient("https://talkie.example.org", transport=_recording(seen, unauthorized)) as t:
        assert t.key_id is None
        with pytest.raises(TalkieApiError) as excinfo:
            t.keys.list()
    assert "authorization" not in seen[0].headers
    assert "--key" in str(excinfo.value) and "TALKIE_API_KEY" in str(excinfo.value)
    # the environment's key is meant for whichever server TALKIE_URL names
    monkeypatch.setenv("TALKIE_API_KEY", SECRET)
    with TalkieClient("https://talkie.example.org", transport=_recording(seen)) as t:
        t.keys.list()
    assert seen[-1].headers["authorization"] == f"Bearer {SECRET}"


def test_keys_stay_out_of_messages_and_reprs(tmp_path: Path) -> None:
    def rejected(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": {"code": "invalid_key", "message": "bad key"}})

    with TalkieClient(
        "http://127.0.0.1:9", api_key=SECRET, transport=_recording([], rejected)
    ) as t:
        assert "verysecret" not in repr(t) and "abcdef123456" in repr(t)
        with pytest.raises(TalkieApiError) as excinfo:
            t.keys.list()
    assert "verysecret" not in str(excinfo.value) and "verysecret" not in repr(excinfo.value)
    with pytest.raises(InvalidInputError) as bad:
        TalkieClient(api_key="tk_abc_sécret")
    assert "sécret" not in str(bad.value)
    with pytest.raises(InvalidInputError) as bad_url:
        TalkieClient("http://user:hunter2@/")
    assert "hunter2" not in str(bad_url.value)


def test_connection_refused_says_how_to_start_the_server() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    talkie = TalkieClient(f"http://127.0.0.1:{port}", api_key=SECRET)
    with talkie, pytest.raises(TalkieError) as excinfo:
        talkie.health()
    message = str(excinfo.value)
    assert f"not running at http://127.0.0.1:{port}" in message
    assert "talkie serve" in message and "make run" in message and "\n" not in message
    assert not isinstance(excinfo.value, TalkieApiError) and "verysecret" not in message


def test_answers_that_are_not_talkie() -> None:
    def proxy_error(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html><body>Bad Gateway</body></html>")

    with _answering(proxy_error) as t, pytest.raises(TalkieApiError) as excinfo:
        t.health()
    assert (excinfo.value.status, excinfo.value.code) == (502, "http_error")

    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>my blog</html>")

    with _answering(html) as t, pytest.raises(TalkieError, match="other than JSON"):
        t.health()

    def old_server(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": "ok"})

    with _answering(old_server) as t, pytest.raises(TalkieError, match="'version'"):
        t.health()

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with _answering(slow, timeout=2) as t, pytest.raises(TalkieError, match="within 2 s"):
        t.health()


def test_urls() -> None:
    assert TalkieClient().url == "http://127.0.0.1:8000"
    assert TalkieClient("https://example.org/talkie/").url == "https://example.org/talkie"
    for bad in ("127.0.0.1:8000", "ftp://example.org", "http://"):
        with pytest.raises(InvalidInputError, match="http://HOST:PORT"):
            TalkieClient(bad)


def test_an_injected_in_process_app(tmp_path: Path) -> None:
    """Starlette's TestClient runs the app in-process; the client uses it as its HTTP client."""
    from fastapi.testclient import TestClient

    from talkie.server.app import ServerOptions, create_app

    app = create_app(options=ServerOptions(data_dir=tmp_path))
    key = (tmp_path / "admin.key").read_text().strip()
    with TestClient(app) as http:
        with TalkieClient("http://testserver", api_key=key, transport=http) as talkie:
            assert talkie.health().status == "ok"
            assert [c.id for c in talkie.characters.iter_all()] == ["astronaut"]
        # closing the TalkieClient left the injected client open: it belongs to the caller
        assert http.get("/v1/health").status_code == 200


def test_importing_the_client_stays_light() -> None:
    code = (
        "import sys, json, talkie.client, talkie.client_cli; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    loaded = set(json.loads(out))
    heavy = {"fastapi", "starlette", "pydantic", "numpy", "cv2", "aiortc", "av", "sqlalchemy",
             "uvicorn", "scipy", "onnxruntime", "mediapipe"}  # fmt: skip
    assert not loaded & heavy, loaded & heavy
