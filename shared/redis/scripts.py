"""The service's Lua scripts. Each declares in KEYS every key it touches, as Redis requires of
a script (and Redis Cluster relies on), and is run by its digest, so a call sends only the
digest, the keys and the arguments.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import NoScriptError

Word = str | int | float | bytes


@dataclass(frozen=True)
class Lua:
    """A script, run by its SHA-1 digest, and loaded again where Redis has forgotten it (after
    a restart, or ``SCRIPT FLUSH``)."""

    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())

    def run(self, redis: Redis, keys: Sequence[str], args: Sequence[Word]) -> Any:
        """The script's answer, on a sync client."""
        try:
            return redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            redis.script_load(self.source)
            return redis.evalsha(self.sha, len(keys), *keys, *args)

    async def run_async(self, redis: AsyncRedis, keys: Sequence[str], args: Sequence[Word]) -> Any:
        """The script's answer, on an asyncio client. Its words go out as bytes: on the hot path of
        the metrics poll, redis-py's packing of each str or int word costs more than the rest."""
        words = [*(key.encode() for key in keys), *(b"%d" % a if isinstance(a, int) else a for a in args)]
        try:
            return await redis.execute_command("EVALSHA", self.sha, len(keys), *words)  # type: ignore[no-untyped-call]
        except NoScriptError:
            await redis.script_load(self.source)
            return await redis.execute_command("EVALSHA", self.sha, len(keys), *words)  # type: ignore[no-untyped-call]


GUARDED_WRITES = Lua("""
-- Writes run only when their guards pass, atomically and in one round trip: an idempotency key
-- not used yet, and a tenant whose active jobs stay within its quota with the new ones.
-- KEYS: the tenant's active-job indexes (ARGV[1] of them); then the idempotency key when
--   ARGV[2] is '1'; then every key of the writes.
-- ARGV: [1] the number of active-job indexes, [2] '1' with an idempotency key, [3] the quota of
--   active jobs (-1 for none), [4] the jobs the writes add, then the writes: per command the
--   words it takes (this count included), the number of its key in KEYS (0 for none), its name
--   and its arguments. The name ZADD_FROM_NOW (shared.redis.writes.FROM_NOW) is a ZADD whose
--   score, given in ms, counts from Redis's own clock: a deadline no host's clock sets.
-- Answers {'replay', the idempotency key's value}, {'quota', the active count} or {'written'}.
local indexes = tonumber(ARGV[1])
if ARGV[2] == '1' then
  local earlier = redis.call('GET', KEYS[indexes + 1])
  if earlier then return {'replay', earlier} end
end
local quota = tonumber(ARGV[3])
if quota >= 0 then
  local active = 0
  for i = 1, indexes do active = active + redis.call('ZCARD', KEYS[i]) end
  if active + tonumber(ARGV[4]) > quota then return {'quota', tostring(active)} end
end
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local i = 5
while i <= #ARGV do
  local words, key = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  local name = ARGV[i + 2]
  if name == 'ZADD_FROM_NOW' then
    redis.call('ZADD', KEYS[key], now_ms + tonumber(ARGV[i + 3]), ARGV[i + 4])
  elseif key > 0 then
    redis.call(name, KEYS[key], unpack(ARGV, i + 3, i + words - 1))
  else
    redis.call(name, unpack(ARGV, i + 3, i + words - 1))
  end
  i = i + words
end
return {'written'}
""")

KEY_AND_PAGE = Lua("""
-- An API key's tenant, secret hash and revocation time, with this request counted in the key's
-- rate window only when the presented secret's hash matches and the key is not revoked (so a
-- key id alone, which is not secret, cannot use up a tenant's rate); a request whose key does
-- not check out counts against its client address instead, and an address past its limit of
-- failures is not looked up at all. And a page of a job's epoch records with its tenant and
-- status. Either or both, in one round trip.
-- KEYS: the key's record, its rate counter and the client address's failure counter when
--   ARGV[1] is above 0; then the job's hash and its epoch list when a page is asked for.
-- ARGV: [1] the rate counter's lifetime in seconds (0: no key to look up), [2] and [3] the
--   first and last index of the page, [4] the presented secret's hash, [5] the failures an
--   address may have, [6] their window in seconds.
-- Answers {{tenant, hash, revoked_at} (shared.auth.keys.CHECKED_FIELDS), count, {tenant, status},
-- records, epoch count}, false for the parts not asked for; the count is 0 for a key that did
-- not check out, and -1 (with no fields) for an address past its failures.
local reply = {false, false, false, false, false}
local next_key = 1
if tonumber(ARGV[1]) > 0 then
  next_key = 4
  if tonumber(redis.call('GET', KEYS[3]) or '0') >= tonumber(ARGV[5]) then
    reply[2] = -1
  else
    local fields = redis.call('HMGET', KEYS[1], 'tenant', 'hash', 'revoked_at')
    reply[1] = fields
    if fields[1] and fields[2] == ARGV[4] and not fields[3] then
      reply[2] = redis.call('INCR', KEYS[2])
      redis.call('EXPIRE', KEYS[2], ARGV[1])
    else
      reply[2] = 0
      if redis.call('INCR', KEYS[3]) == 1 then
        redis.call('EXPIRE', KEYS[3], ARGV[6])
      end
    end
  end
end
if #KEYS > next_key then
  reply[3] = redis.call('HMGET', KEYS[next_key], 'tenant', 'status')
  reply[4] = redis.call('LRANGE', KEYS[next_key + 1], ARGV[2], ARGV[3])
  reply[5] = redis.call('LLEN', KEYS[next_key + 1])
end
return reply
""")


CLAIM_DUE = Lua("""
-- Members of a time-ordered set that are due, each held for a while by the caller, so that one
-- process at a time handles it; a member whose handler died is due again when its hold ends.
-- KEYS[1]: a sorted set scored by when each member is due (epoch ms; 0 for at once).
-- ARGV: [1] the most members to take, [2] how long to hold them (ms).
-- Answers the members taken. Time is Redis's own, so hosts' clocks do not matter.
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ms, 'LIMIT', 0, tonumber(ARGV[1]))
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], ms + tonumber(ARGV[2]), member)
end
return due
""")


HOLD_STREAM = Lua("""
-- A slot among an API key's open streams (event streams and long polls), each held until it
-- expires unless renewed, so that a stream whose API process died frees its slot by itself.
-- KEYS[1]: the key's open streams, a sorted set scored by when each expires (epoch ms).
-- ARGV: [1] the stream's id, [2] the most streams the key may hold, [3] how long the slot is
--   held (ms), [4] '1' to renew a slot already held, without a look at the limit.
-- Answers 1 when the slot is held, 0 when the key holds its most streams already (or, on a
-- renewal, when the slot had expired and was taken again only if there was room).
-- Time is Redis's own, so hosts' clocks do not matter.
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms)
local held = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not (ARGV[4] == '1' and held) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], ms + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
""")
