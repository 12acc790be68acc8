"""The meeting pieces that need no browser: the room's signalling, choosing a join script,
and the virtual devices' report on a machine without them (this one: no v4l2loopback module,
no PulseAudio/PipeWire)."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from talkie.cli import main
from talkie.errors import InvalidInputError
from talkie.meet.devices import check_devices
from talkie.meet.joins import join_script_for
from talkie.meet.room import room_app


def test_the_room_relays_offers_between_its_participants_only() -> None:
    with TestClient(room_app()) as client:
        with (
            client.websocket_connect("/ws?room=a") as ada,
            client.websocket_connect("/ws?room=a") as bob,
            client.websocket_connect("/ws?room=b") as eve,
        ):
            ada.send_json({"type": "join", "name": "Ada"})
            welcome = ada.receive_json()
            assert welcome["type"] == "welcome" and welcome["peers"] == []
            eve.send_json({"type": "join", "name": "Eve"})
            assert eve.receive_json()["peers"] == []  # another room: Ada is not there
            bob.send_json({"type": "join", "name": "Bob"})
            bob_welcome = bob.receive_json()
            assert bob_welcome["peers"] == [{"id": welcome["id"], "name": "Ada"}]
            assert ada.receive_json() == {"type": "joined", "id": bob_welcome["id"], "name": "Bob"}
            bob.send_json({"type": "signal", "to": welcome["id"], "data": {"type": "offer"}})
            got = ada.receive_json()
            assert got == {"type": "signal", "from": bob_welcome["id"], "name": "Bob",
                           "data": {"type": "offer"}}  # fmt: skip
            bob.send_text("not json")
            assert bob.receive_json()["type"] == "error"
            assert client.get("/state?room=a").json()["participants"][1]["name"] == "Bob"
        assert client.get("/state?room=a").json()["participants"] == []  # all left
        assert "meet-room.js" in client.get("/").text


@pytest.mark.parametrize(
    ("url", "name"),
    [("http://127.0.0.1:8090/?room=demo", "room"),
     ("https://meet.google.com/abc-defg-hij", "google-meet"),
     ("https://teams.microsoft.com/l/meetup-join/19%3ameeting", "teams"),
     ("https://us02web.zoom.us/j/123456789?pwd=x", "zoom")],
)  # fmt: skip
def test_the_join_script_follows_the_meeting_address(url: str, name: str) -> None:
    assert join_script_for(url).name == name


def test_an_unknown_meeting_client_is_a_clear_error() -> None:
    with pytest.raises(InvalidInputError, match="google-meet"):
        join_script_for("https://chat.example.org/call/1")
    with pytest.raises(InvalidInputError, match="unknown meeting client"):
        join_script_for("https://meet.google.com/x", "skype")


def test_missing_virtual_devices_are_reported_with_what_to_do(tmp_path: Path) -> None:
    report = check_devices(sys_module=tmp_path / "no-module", sys_video=tmp_path)
    assert not report.ready and report.camera is None
    text = report.text()
    assert "virtual camera: missing" in text and "modprobe v4l2loopback" in text
    # A machine with the module and a loopback device: the camera is found (its sound server
    # is still judged for real: on this machine there is none, and none is claimed).
    (tmp_path / "module").mkdir()
    (tmp_path / "video7").mkdir()
    (tmp_path / "video7" / "name").write_text("Dummy video device (0x0000)\n")
    found = check_devices(sys_module=tmp_path / "module", sys_video=tmp_path)
    assert found.camera == "/dev/video7"
    wrong = check_devices(video_device="/dev/video0", sys_module=tmp_path / "module",
                          sys_video=tmp_path)  # fmt: skip
    assert "/dev/video0 is not a v4l2loopback device" in wrong.text()


def test_the_command_says_what_is_missing_here(capsys: pytest.CaptureFixture[str]) -> None:
    report = check_devices()
    status = main(["virtual-devices"])
    out = capsys.readouterr().out
    assert status == (0 if report.ready else 2)
    assert out.strip() == report.text()
    if not Path("/sys/module/v4l2loopback").exists():
        assert "v4l2loopback kernel module is not loaded" in out
