"""Settings read from the environment: the operator token's rules."""

import pytest
from pydantic import ValidationError

from shared.settings import Settings


def test_the_operator_token_is_a_secret_of_at_least_32_characters() -> None:
    token = "t" * 32
    settings = Settings(operator_token=token)
    assert settings.operator_token is not None
    assert settings.operator_token.get_secret_value() == token
    assert token not in repr(settings), "never printed in a log of the settings"
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(operator_token="t" * 31)


def test_an_empty_operator_token_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPERATOR_TOKEN", "")  # Compose's ${OPERATOR_TOKEN:-} when it is unset
    assert Settings().operator_token is None
