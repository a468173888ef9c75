"""An uploaded dataset as its owner sees it."""

from datetime import datetime

from pydantic import BaseModel, Field


class DatasetInfo(BaseModel):
    id: str
    tenant: str
    name: str | None
    train_samples: int
    test_samples: int
    test_held_out: bool = Field(description="No test set was uploaded: the last tenth of train is it.")
    classes: list[int]
    class_counts: dict[str, int] = Field(description="Training samples per label.")
    image_shape: list[int]
    created_at: datetime
