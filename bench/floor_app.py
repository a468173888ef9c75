"""The floor of the API load benchmark: the least an HTTP endpoint can do to serve a job's
epoch records from Redis. One asyncio Redis read (LRANGE), its items spliced into a JSON
array; no authentication, validation, middleware or status read.

    REDIS_URL=redis://... KEY_PREFIX=kjbench uvicorn bench.floor_app:app
"""

import os

from redis.asyncio import BlockingConnectionPool, Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.redis.codec import strings
from shared.redis.connection import MAX_CONNECTIONS
from shared.redis.keys import RedisKeys

# The same kind of pool as the API's (shared.jobs.feed), so that neither refuses a request at 256
# concurrent connections while the other waits for a free connection.
_redis = Redis.from_pool(
    BlockingConnectionPool.from_url(
        os.environ["REDIS_URL"], decode_responses=True, max_connections=MAX_CONNECTIONS, timeout=2.0
    )
)
_keys = RedisKeys(os.environ.get("KEY_PREFIX", "kj"))


async def metrics(request: Request) -> Response:
    """The records after ``after_epoch`` as a JSON array."""
    after = int(request.query_params.get("after_epoch", "0"))
    records = await _redis.lrange(_keys.epochs(request.path_params["job_id"]), after, -1)
    return Response(f'{{"records":[{",".join(strings(records))}]}}', media_type="application/json")


async def health(request: Request) -> Response:
    """Answers once the server is up."""
    return Response("ok")


app = Starlette(
    routes=[Route("/v1/jobs/{job_id}/metrics", metrics), Route("/healthz", health)],
)
