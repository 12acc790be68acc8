"""Property-based API fuzzing with schemathesis against the served OpenAPI document.

Every operation gets generated requests, valid and invalid, authenticated as admin. Checked on
each response: no server error (5xx), the status code is documented, the content type is the
documented one, and the body matches the documented schema. The number of examples per operation
is bounded (``TALKIE_FUZZ_EXAMPLES``, default 30) so the run stays within a minute or two.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from talkie.server.app import ServerOptions, create_app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "live"))
from live_fakes import FakeConversation  # noqa: E402

_DATA = Path(tempfile.mkdtemp(prefix="talkie-fuzz-"))
# Rate limits high enough that the fuzzer reaches the handlers (429s are tested elsewhere).
_OPTIONS = ServerOptions(data_dir=_DATA, requests_per_minute=100_000, request_burst=100_000)
APP = create_app(options=_OPTIONS, conversation_factory=FakeConversation)
ADMIN = {"Authorization": f"Bearer {(_DATA / 'admin.key').read_text().strip()}"}
EXAMPLES = int(os.environ.get("TALKIE_FUZZ_EXAMPLES", "30"))

STATUSES: Counter[int] = Counter()


async def counting_app(scope: Any, receive: Any, send: Any) -> None:
    """The app, counting response statuses (for the summary printed at the end)."""

    async def counted(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            STATUSES[int(message["status"])] += 1
        await send(message)

    await APP(scope, receive, counted)


schema = schemathesis.openapi.from_asgi("/openapi.json", counting_app)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same requests on every run: a failure here is reproducible
)
def test_api_conforms_to_its_openapi_and_never_fails(case: schemathesis.Case) -> None:
    # Some requests do real work (a voice preview synthesises up to 400 characters: ~25 s of
    # speech, several seconds on a busy 2-core machine); the check is correctness, not speed.
    case.call_and_validate(headers=ADMIN, checks=CHECKS, timeout=120)


def test_fuzzing_summary() -> None:
    """Runs last in this module: how many requests were made, and not one 5xx among them."""
    total = sum(STATUSES.values())
    print(f"schemathesis: {total} requests, statuses {dict(sorted(STATUSES.items()))}")
    assert total > 0
    assert not [code for code in STATUSES if code >= 500]
