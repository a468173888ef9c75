"""The client fixtures (a fresh tenant's key, a client holding it) for the command tests too."""

from tests.client.conftest import api_key, kjobs

__all__ = ["api_key", "kjobs"]
