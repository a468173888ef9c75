"""Webhooks: where they may go, how they are signed, the outbox, its claims and the secrets."""
