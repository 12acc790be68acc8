"""Virtual camera and microphone for desktop meeting apps: what this machine has, and what not.

A desktop app (Zoom, Teams, Slack...) picks a camera and a microphone from the system. The
character can be both: a v4l2loopback video device (``/dev/videoN``, a kernel module) for the
camera, and a PulseAudio/PipeWire null sink whose monitor is the microphone. Neither can be
made from user space without them, so ``check_devices`` says plainly what is missing and the
commands that add it; it never reports a device it did not find.

Feeding the devices (frames into the loopback device, the voice into the sink) is not built
yet: see the project notes. ``talkie virtual-devices`` prints the report (exit status 2 when
something is missing).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DevicesReport", "check_devices"]

SYS_MODULE = Path("/sys/module/v4l2loopback")
SYS_VIDEO = Path("/sys/class/video4linux")
SINK_NAME = "talkie_voice"

CAMERA_FIX = (
    "load the v4l2loopback kernel module: sudo apt-get install v4l2loopback-dkms && "
    'sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label="Talkie"'
)
AUDIO_FIX = (
    "start PulseAudio or PipeWire (with pipewire-pulse) in your desktop session; then: "
    f"pactl load-module module-null-sink sink_name={SINK_NAME} && "
    f"pactl load-module module-remap-source master={SINK_NAME}.monitor source_name=talkie_mic"
)


@dataclass
class DevicesReport:
    """``camera``: the loopback device found (or None), ``sound_server``: the PulseAudio-API
    server's name (or None); ``problems``: what is missing, each with how to fix it."""

    camera: str | None = None
    sound_server: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.problems

    def text(self) -> str:
        lines = [
            f"virtual camera: {self.camera or 'missing'}",
            f"virtual microphone: {'via ' + self.sound_server if self.sound_server else 'missing'}",
        ]
        lines += [f"- {p}" for p in self.problems]
        return "\n".join(lines)


def _loopback_devices(sys_video: Path) -> list[str]:
    found = []
    for entry in sorted(sys_video.glob("video*")):
        try:
            name = (entry / "name").read_text().strip().lower()
        except OSError:
            continue
        # v4l2loopback names its devices "Dummy video device (0x0000)" unless card_label is set;
        # the module's own sysfs entry tells loopback devices apart from real cameras.
        driver = entry / "device" / "driver"
        if (
            "dummy video device" in name
            or "talkie" in name
            or "loopback" in str(os.path.realpath(driver))
        ):
            found.append(f"/dev/{entry.name}")
    return found


def _sound_server() -> tuple[str | None, str]:
    pactl = shutil.which("pactl")
    if pactl is None:
        return None, "no 'pactl' here: PulseAudio/PipeWire tools are not installed; " + AUDIO_FIX
    try:
        done = subprocess.run(
            [pactl, "info"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"pactl could not ask the sound server ({exc}); {AUDIO_FIX}"
    if done.returncode != 0:
        return None, "no PulseAudio/PipeWire server is running for this user; " + AUDIO_FIX
    for line in done.stdout.splitlines():
        if line.startswith("Server Name:"):
            return line.split(":", 1)[1].strip(), ""
    return "a PulseAudio-compatible server", ""


def check_devices(
    *,
    video_device: str | None = None,
    sys_module: Path = SYS_MODULE,
    sys_video: Path = SYS_VIDEO,
) -> DevicesReport:
    """What this machine offers for a virtual camera and microphone (see the module doc)."""
    report = DevicesReport()
    if not sys_module.exists():
        report.problems.append(f"the v4l2loopback kernel module is not loaded; {CAMERA_FIX}")
    else:
        devices = _loopback_devices(sys_video)
        if video_device is not None:
            if video_device in devices:
                report.camera = video_device
            else:
                report.problems.append(
                    f"{video_device} is not a v4l2loopback device (found: "
                    f"{', '.join(devices) or 'none'})"
                )
        elif devices:
            report.camera = devices[0]
        else:
            report.problems.append(
                "v4l2loopback is loaded but made no device; reload it with devices=1: " + CAMERA_FIX
            )
    server, problem = _sound_server()
    report.sound_server = server
    if problem:
        report.problems.append(problem)
    return report
