"""Messages given at the raise, as the original fastapi-error-code treated them.

A message that is a dotted locale key is looked up like a declared one; any other message is
shown as written, with its ``{placeholders}`` filled from a dict detail.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fastapi_error_codes import BaseAppException, ErrorHandlerConfig, setup_exception_handler


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    (tmp_path / "en.json").write_text(
        json.dumps({"errors": {"auth": {"required": "Authentication required for {user}"}}})
    )
    (tmp_path / "ko.json").write_text(json.dumps({"errors": {"auth": {"required": "인증 필요"}}}))
    app = FastAPI()
    setup_exception_handler(app, ErrorHandlerConfig(default_locale="en", locale_dir=tmp_path))

    @app.get("/key")
    def key() -> None:
        raise BaseAppException(
            error_code=201, message="errors.auth.required", status_code=401, detail={"user": "al"}
        )

    @app.get("/unknown-key")
    def unknown_key() -> None:
        raise BaseAppException(201, "errors.auth.missing", 401)

    @app.get("/template/{user_id}")
    def template(user_id: int) -> None:
        raise BaseAppException(
            error_code=301,
            message="User {user_id} not found in {place}",
            status_code=404,
            detail={"user_id": user_id},
        )

    @app.get("/prose")
    def prose() -> None:
        raise BaseAppException(400, "Bad input. Try again.", 400)

    return TestClient(app)


def test_a_message_that_is_a_locale_key_is_localised(client: TestClient) -> None:
    assert client.get("/key").json()["message"] == "Authentication required for al"
    korean = client.get("/key", headers={"Accept-Language": "ko-KR,ko;q=0.9"})
    assert korean.json()["message"] == "인증 필요"
    assert korean.headers["content-language"] == "ko"


def test_a_key_found_nowhere_is_shown_as_written(client: TestClient) -> None:
    assert client.get("/unknown-key").json()["message"] == "errors.auth.missing"


def test_placeholders_of_a_given_message_are_filled_from_the_detail(client: TestClient) -> None:
    body = client.get("/template/7").json()
    assert body["message"] == "User 7 not found in {place}"  # unknown ones stay as written


def test_prose_with_dots_is_not_a_key(client: TestClient) -> None:
    assert client.get("/prose").json()["message"] == "Bad input. Try again."
