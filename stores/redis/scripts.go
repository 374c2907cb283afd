package redis

import (
	"strings"

	"github.com/redis/go-redis/v9"
)

// The Lua scripts run in Redis, each atomically (no other command runs
// while one does). They only use commands of Redis 4.0 and later and declare
// every key they touch, so they run on Redis Cluster too: the keys of a store
// instance share one hash tag.

// claimScript makes the caller the owner of a store instance: it raises the
// instance's owner epoch and records the new owner (epoch and a random token
// of the opening process), and returns the owner and the stored changelog
// offset (nil if none), the number of entries and the stored input offsets
// (nil if none).
//
// KEYS[1] the meta hash, KEYS[2] the index. ARGV[1] the token, ARGV[2] the layout version.
var claimScript = redis.NewScript(`
local t = redis.call('TYPE', KEYS[1]).ok
if t ~= 'none' and t ~= 'hash' then
  return redis.error_reply('KSLAYOUT ' .. KEYS[1] .. ' holds a ' .. t .. ', not a hash')
end
local layout = redis.call('HGET', KEYS[1], 'layout')
if layout and layout ~= ARGV[2] then
  return redis.error_reply('KSLAYOUT ' .. KEYS[1] .. ' has layout version ' .. layout .. ', this version of kstreams reads ' .. ARGV[2])
end
local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
local owner = epoch .. '/' .. ARGV[1]
redis.call('HSET', KEYS[1], 'owner', owner, 'layout', ARGV[2])
return {owner, redis.call('HGET', KEYS[1], 'offset'), redis.call('ZCARD', KEYS[2]), redis.call('HGET', KEYS[1], 'inputs')}
`)

// flushScript applies a layer's writes, the changelog offset and the input
// offsets if the caller still owns the store instance, else fails with
// KSFENCED. Every check comes before the first write, so a failing script
// changes nothing; and no other command runs while it does, so no reader,
// and no Redis that stops mid-way (its AOF or RDB holds whole commands),
// ever sees data without the offsets written with it.
//
// KEYS[1] meta hash, KEYS[2] data hash, KEYS[3] index sorted set.
// ARGV[1] owner; ARGV[2] the changelog offset and ARGV[3] the encoded input
// offsets: an empty string keeps the field, '-' deletes it, else the value (an encoding
// of input offsets starts with its version byte, 0x01, never '-');
// ARGV[4..6] the numbers of range deletions, sets and deletions; then each
// range deletion's ZRANGEBYLEX bounds, each set's key and value, and each
// deleted key.
var flushScript = redis.NewScript(`
local meta, data, index = KEYS[1], KEYS[2], KEYS[3]
local owner = redis.call('HGET', meta, 'owner')
if owner ~= ARGV[1] then
  return redis.error_reply('KSFENCED owner epoch is now ' .. tostring(redis.call('HGET', meta, 'epoch')))
end
for _, k in ipairs({data, index}) do
  local t = redis.call('TYPE', k).ok
  local want = 'hash'
  if k == index then want = 'zset' end
  if t ~= 'none' and t ~= want then
    return redis.error_reply('KSLAYOUT ' .. k .. ' holds a ' .. t .. ', not a ' .. want)
  end
end
local nranges, nsets, ndels = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local chunk = 500
local i = 7
for _ = 1, nranges do
  local min, max = ARGV[i], ARGV[i + 1]
  i = i + 2
  if min == '-' and max == '+' then
    redis.call('UNLINK', data, index)
  else
    while true do
      local ks = redis.call('ZRANGEBYLEX', index, min, max, 'LIMIT', 0, chunk)
      if #ks == 0 then break end
      redis.call('HDEL', data, unpack(ks))
      redis.call('ZREM', index, unpack(ks))
    end
  end
end
local last = i + 2 * nsets - 1
while i <= last do
  local j = math.min(i + 2 * chunk - 1, last)
  -- HSET counts the fields it added: a chunk of updates only (the common
  -- case of aggregations) needs no index update.
  if redis.call('HSET', data, unpack(ARGV, i, j)) > 0 then
    local members = {}
    for x = i, j, 2 do
      members[#members + 1] = 0
      members[#members + 1] = ARGV[x]
    end
    redis.call('ZADD', index, unpack(members))
  end
  i = j + 1
end
last = i + ndels - 1
while i <= last do
  local j = math.min(i + chunk - 1, last)
  redis.call('HDEL', data, unpack(ARGV, i, j))
  redis.call('ZREM', index, unpack(ARGV, i, j))
  i = j + 1
end
for a, field in pairs({[2] = 'offset', [3] = 'inputs'}) do
  if ARGV[a] == '-' then
    redis.call('HDEL', meta, field)
  elseif ARGV[a] ~= '' then
    redis.call('HSET', meta, field, ARGV[a])
  end
end
return 'OK'
`)

// rangeScript reads one page of a range: up to ARGV[3] keys between the
// ZRANGEBYLEX bounds ARGV[1] and ARGV[2] with their values, as a flat list
// key, value, key, value...
//
// KEYS[1] data hash, KEYS[2] index sorted set.
var rangeScript = redis.NewScript(`
local ks = redis.call('ZRANGEBYLEX', KEYS[2], ARGV[1], ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
if #ks == 0 then return {} end
local vs = redis.call('HMGET', KEYS[1], unpack(ks))
local out = {}
for i = 1, #ks do
  out[2 * i - 1] = ks[i]
  out[2 * i] = vs[i]
end
return out
`)

// scriptError splits an error a script returned with redis.error_reply
// into its code (KSFENCED, KSLAYOUT) and message.
func scriptError(err error) (code, msg string) {
	code, msg, _ = strings.Cut(err.Error(), " ")
	return code, msg
}

// lexMin and lexMax turn range bounds into ZRANGEBYLEX bounds: [lo, hi).
func lexMin(lo []byte, exclusive bool) string {
	if lo == nil {
		return "-"
	}
	if exclusive {
		return "(" + string(lo)
	}
	return "[" + string(lo)
}

func lexMax(hi []byte) string {
	if hi == nil {
		return "+"
	}
	return "(" + string(hi)
}
