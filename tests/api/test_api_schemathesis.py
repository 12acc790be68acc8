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
from pathlib import Path

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
APP = create_app(options=ServerOptions(data_dir=_DATA), conversation_factory=FakeConversation)
ADMIN = {"Authorization": f"Bearer {(_DATA / 'admin.key').read_text().strip()}"}
EXAMPLES = int(os.environ.get("TALKIE_FUZZ_EXAMPLES", "30"))

schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
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
    case.call_and_validate(headers=ADMIN, checks=CHECKS)
