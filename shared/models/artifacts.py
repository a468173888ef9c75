"""How the artifact store answered a process's check, as ``/readyz`` and the workers report it:
Pydantic only, for the client."""

from pydantic import BaseModel, Field


class StoreStatus(BaseModel):
    """The artifact store as one process found it."""

    url: str = Field(description="Where the store is (`s3://bucket/prefix`, or `file:///path`).")
    ok: bool = Field(description="Whether a probe object was written, read back and deleted.")
    error: str | None = Field(None, description="What went wrong, when it did.")
