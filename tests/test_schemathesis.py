"""Property-based conformance: schemathesis drives every operation of
/openapi.json against the WSGI app; no 5xx, and every answer matches the
document (status codes, content types, bodies, headers)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from labelcheck.web.app import create_app

# The schema is loaded at collection time, so the app (on a throw-away data
# directory, removed by the module fixture below) is built then too.
DATA = Path(tempfile.mkdtemp(prefix="labelcheck-schemathesis-"))
APP = create_app({"data_dir": DATA / "data", "verify_rate": 0})
schema = schemathesis.openapi.from_wsgi("/openapi.json", APP)

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


@pytest.fixture(scope="module", autouse=True)
def _cleanup():
    yield
    APP.extensions["labelcheck"].services.close()
    shutil.rmtree(DATA, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms(case):
    svc = APP.extensions["labelcheck"]
    token = svc.regulator_token if case.operation.path == "/v1/export" else svc.admin_token
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
