"""The WebRTC offer may carry the user's camera and screen as two more send-only video m-lines
(the character's video stays the first); a third input is refused with a clear error."""

from __future__ import annotations

import pytest
from aiortc import RTCPeerConnection

from talkie.errors import InvalidInputError
from talkie.transport.webrtc import VIDEO_INPUTS, check_offer


async def offer_with(inputs: int) -> str:
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="sendrecv")
    for _ in range(inputs):
        pc.addTransceiver("video", direction="sendonly")
    pc.createDataChannel("events")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return str(sdp)


@pytest.mark.asyncio
async def test_camera_and_screen_lines_are_accepted() -> None:
    assert VIDEO_INPUTS == ("camera", "screen")
    for inputs in (0, 1, 2):
        _, media = check_offer(await offer_with(inputs), "offer")
        assert media["video"] == "recvonly"  # the first video m-line: the character's


@pytest.mark.asyncio
async def test_more_video_inputs_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="at most 3"):
        check_offer(await offer_with(3), "offer")
