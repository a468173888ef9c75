"""The service's Lua scripts. Each declares in KEYS every key it touches, as Redis requires of
a script (and Redis Cluster relies on), and is run by its digest (``register_script``), so a
call sends only the digest, the keys and the arguments.
"""

GUARDED_WRITES = """
-- Writes run only when their guards pass, atomically and in one round trip: an idempotency key
-- not used yet, and a tenant whose active jobs stay within its quota with the new ones.
-- KEYS: the tenant's active-job indexes (ARGV[1] of them); then the idempotency key when
--   ARGV[2] is '1'; then every key of the writes.
-- ARGV: [1] the number of active-job indexes, [2] '1' with an idempotency key, [3] the quota of
--   active jobs (-1 for none), [4] the jobs the writes add, then the writes: per command the
--   words it takes (this count included), the number of its key in KEYS (0 for none), its name
--   and its arguments.
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
local i = 5
while i <= #ARGV do
  local words, key = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  local name = ARGV[i + 2]
  if key > 0 then
    redis.call(name, KEYS[key], unpack(ARGV, i + 3, i + words - 1))
  else
    redis.call(name, unpack(ARGV, i + 3, i + words - 1))
  end
  i = i + words
end
return {'written'}
"""

KEY_AND_PAGE = """
-- An API key's record with this request counted in its rate window, and a page of a job's
-- epoch records with its tenant and status: either or both, in one round trip.
-- KEYS: the key's record and its rate counter when ARGV[1] is '1'; then the job's hash and its
--   epoch list when a page is asked for.
-- ARGV: [1] '1' to look up a key, [2] the rate counter's lifetime in seconds, [3] and [4] the
--   first and last index of the page.
-- Answers {record as a flat list, count, {tenant, status}, records, epoch count}, false for the
-- parts not asked for.
local reply = {false, false, false, false, false}
local next_key = 1
if ARGV[1] == '1' then
  reply[1] = redis.call('HGETALL', KEYS[1])
  reply[2] = redis.call('INCR', KEYS[2])
  redis.call('EXPIRE', KEYS[2], ARGV[2])
  next_key = 3
end
if #KEYS > next_key then
  reply[3] = redis.call('HMGET', KEYS[next_key], 'tenant', 'status')
  reply[4] = redis.call('LRANGE', KEYS[next_key + 1], ARGV[3], ARGV[4])
  reply[5] = redis.call('LLEN', KEYS[next_key + 1])
end
return reply
"""

CLAIM_DUE = """
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
"""
