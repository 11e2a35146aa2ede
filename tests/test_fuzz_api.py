"""API fuzzing: schemathesis generates requests from the server's own OpenAPI schema, in process,
for every route, with a valid key, a reader key, a wrong key and none. Every response must be
declared by the schema (status, content type, body shape) and none may be a 500."""

from __future__ import annotations

import shutil

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from ingest.build import build_pipeline
from rag_core.embedding import Embedder
from rag_core.settings import load_settings
from rag_server.app import create_app
from rag_server.rag import assemble
from tests.conftest import EXAMPLES, ScriptedGenerator, add_key, bearer

pytestmark = pytest.mark.slow  # schemathesis generates hundreds of requests

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
REPLY = "Hotel stays are capped at €165 per night [1]. Employees get 27 days of leave [2]."


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> dict[str, object]:
    root = tmp_path_factory.mktemp("fuzz")
    docs = root / "docs"
    shutil.copytree(EXAMPLES, docs)
    settings = load_settings(
        data_dir=root / "data",
        audit={"path": str(root / "audit.jsonl")},
        limits={"requests_per_minute": 1_000_000, "failed_auth_per_minute": 1_000_000},
        grounding={"gate_threshold": 0.3},
    )
    build_pipeline(settings, embedder).run([docs])
    app = create_app(settings, assemble(settings, embedder, ScriptedGenerator([REPLY])))
    admin = bearer(add_key(settings, "admin"))
    return {
        "app": app,
        "schema": schemathesis.openapi.from_asgi("/schema/openapi.json", app, headers=admin),
        "admin": admin,
        "reader": bearer(add_key(settings, "reader", groups=[])),
        "wrong": bearer("rag_nobody_" + "x" * 43),
        "none": {},
    }


def test_every_route_answers_within_its_schema(keys: dict[str, object]) -> None:
    """Each generated request is sent four times: as an admin, as a reader without groups, with
    a wrong key and with none. (Driven through hypothesis directly: schemathesis' own pytest
    plugin does not load under pytest 9.)"""
    schema = keys["schema"]
    assert isinstance(schema, schemathesis.schemas.BaseSchema)
    operations = [result.ok() for result in schema.get_all_operations()]
    # every route, documents, metrics and the web page's three (me, document text and file) included
    assert len(operations) == 14
    tried: dict[str, int] = {}
    for operation in operations:

        @hsettings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def fuzz(case: schemathesis.Case) -> None:
            tried[case.operation.label] = tried.get(case.operation.label, 0) + 1
            public = case.operation.path in ("/healthz", "/readyz")
            writes = case.method.upper() in ("POST", "DELETE") and case.operation.path.startswith(
                "/v1/documents"
            )
            for who in ("admin", "reader", "wrong", "none"):
                headers = keys[who]
                assert isinstance(headers, dict)
                response = case.call_and_validate(headers=headers, checks=CHECKS)
                if who in ("wrong", "none") and not public:
                    assert response.status_code == 401, (who, case.path, response.text)
                if who == "reader" and writes:
                    assert response.status_code in (400, 401, 403, 413, 422), response.text

        fuzz()
    assert all(n > 0 for n in tried.values()) and len(tried) == len(operations)
