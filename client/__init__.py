"""A typed Python client of the keras-jobs REST API, sync and asyncio.

```python
from client import KJobsClient

with KJobsClient() as jobs:  # KJOBS_URL and KJOBS_API_KEY from the environment
    job = jobs.submit({"preset": "dropout", "training": {"epochs": 3}})
    for event in jobs.events(job.id):
        print(event)
```
"""

from api.schemas import (
    Health,
    JobPage,
    JobSummary,
    JobView,
    MetricsPage,
    PresetView,
    Readiness,
    StudyPage,
    StudyView,
    WorkerList,
)
from client.async_client import AsyncKJobsClient
from client.config import API_KEY_VARIABLE, DEFAULT_URL, URL_VARIABLE
from client.errors import ApiError, FieldIssue, KJobsError, ServiceUnreachable
from client.events import EpochEvent, JobEvent, StateEvent
from client.retry import NO_RETRIES, RetryPolicy
from client.sync_client import KJobsClient
from shared.models.datasets import DatasetInfo
from shared.models.jobs import EpochRecord, JobStatus
from shared.models.queue import QueueSummary
from shared.models.spec import JobSpec, JobSubmission
from shared.models.studies import StudyRequest
from shared.models.webhooks import DeliveryLog, WebhookSecret

__all__ = [
    "API_KEY_VARIABLE",
    "DEFAULT_URL",
    "NO_RETRIES",
    "URL_VARIABLE",
    "ApiError",
    "AsyncKJobsClient",
    "DatasetInfo",
    "DeliveryLog",
    "EpochEvent",
    "EpochRecord",
    "FieldIssue",
    "Health",
    "JobEvent",
    "JobPage",
    "JobSpec",
    "JobStatus",
    "JobSubmission",
    "JobSummary",
    "JobView",
    "KJobsClient",
    "KJobsError",
    "MetricsPage",
    "PresetView",
    "QueueSummary",
    "Readiness",
    "RetryPolicy",
    "ServiceUnreachable",
    "StateEvent",
    "StudyPage",
    "StudyRequest",
    "StudyView",
    "WebhookSecret",
    "WorkerList",
]
