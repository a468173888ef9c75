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


RELEASE = Lua("""
-- Release the next job of one tenant at one priority of one queue to its workers, when the queue
-- has a free slot and the tenant's turn has come (shared.scheduling).
-- A job that needs GPU memory goes to the free worker of the least memory that has enough (its
-- worker recorded in the bound hash); when none is free, the queue waits for one.
-- KEYS: [1] the queue's released set, [2] the leases, [3] the turns of the queue at the
--   priority, [4] their turn clock, [5] the tenant's waiting jobs there, [6] the queue's
--   released set of the priority, [7] the queue's needs, [8] its bound hash.
-- ARGV: [1] the tenant, [2] the queue's free slots, as the dispatcher counted them from the
--   workers' heartbeats (its one process decides; the script keeps each release whole), [3] the
--   tenant's weight, [4] the dispatch
--   deadline in ms, [5] the free workers as JSON, [[name, memory MiB or -1 for no limit], ...],
--   the least memory first.
-- Answers {'released', job id, its worker or ''}, {'full'}, {'blocked', job id} (no free
-- worker has the memory it needs), {'moved'} (another tenant's turn: ask again) or {'empty'}
-- (the tenant had nothing waiting: it left the turns).
if tonumber(ARGV[2]) <= 0 then return {'full'} end
local top = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
if #top == 0 or top[1] ~= ARGV[1] then return {'moved'} end
local first = redis.call('ZRANGE', KEYS[5], 0, 0)
if #first == 0 then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return {'empty'}
end
local job = first[1]
local worker = ''
local need = tonumber(redis.call('HGET', KEYS[7], job) or '0')
if need > 0 then
  for _, free in ipairs(cjson.decode(ARGV[5])) do
    if free[2] < 0 or free[2] >= need then worker = free[1]; break end
  end
  if worker == '' then return {'blocked', job} end
  redis.call('HSET', KEYS[8], job, worker)
end
redis.call('ZREM', KEYS[5], job)
-- A tenant that starts waiting (score 0) or waited while others were served begins at the
-- clock: no credit for the time it asked for nothing.
local pass = math.max(tonumber(top[2]), tonumber(redis.call('GET', KEYS[4]) or '0'))
redis.call('SET', KEYS[4], tostring(pass))
-- The tenant keeps its place in the turns with nothing waiting, so that a job it submits next
-- starts from its pass, not the clock's; it leaves when its turn finds its line empty.
redis.call('ZADD', KEYS[3], tostring(pass + 1 / tonumber(ARGV[3])), ARGV[1])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZADD', KEYS[1], now, job)
redis.call('ZADD', KEYS[6], now, job)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), job)
return {'released', job, worker}
""")


ENSURE_DISPATCH = Lua("""
-- Make sure a queued job reaches a worker: one already released is to be sent (again), but for
-- one sent to a worker of its own (which may be gone), which waits again to be sent anew; any
-- other waits for its turn (added if it was not waiting yet).
-- KEYS: [1] the queue's released set, [2] the tenant's waiting jobs at the job's priority,
--   [3] the turns there, [4] the dispatcher's wake-up list, [5] the queue's released set of the
--   job's priority, [6] the queue's bound hash.
-- ARGV: [1] the job id, [2] its creation time (epoch ms), [3] the tenant.
-- Answers 'send' or 'waits'.
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  if not redis.call('HGET', KEYS[6], ARGV[1]) then return 'send' end
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[5], ARGV[1])
  redis.call('HDEL', KEYS[6], ARGV[1])
end
redis.call('ZADD', KEYS[2], 'NX', ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], 'NX', 0, ARGV[3])
redis.call('RPUSH', KEYS[4], '1')
return 'waits'
""")


RENEW_HOLD = Lua("""
-- Keep a lease held by ARGV[1] for ARGV[2] ms more, or take it when nobody holds it.
-- KEYS: [1] the lease. Answers 1 when ARGV[1] holds it now, else 0.
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
""")


RELEASE_HOLD = Lua("""
-- Give up a lease that ARGV[1] holds. KEYS: [1] the lease.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
""")
