"""API keys: who a request comes from, and how many requests its key made."""
