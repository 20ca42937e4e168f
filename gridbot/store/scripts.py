"""The Lua scripts of the Redis store, and their registration on a client.

Each script is one atomic decision. The keys one call touches share one hash tag (see keys.py),
so under Redis Cluster every call stays in one slot. Two exceptions touch keys in many slots and
run only on a standalone server or a Sentinel-managed master: HOLD_MANY and OWN_RENEW_MANY.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.commands.core import AsyncScript

from gridbot.store.base import Election
from gridbot.store.connect import Client

# The hot path: many events of one conversation decided in one call (one slot: every key carries
# the conversation's hash tag). KEYS: election, then one claim key per event. ARGV: claim ttl (s),
# then, as one argument, per event the csv of teams its copies speak for, events separated by ";"
# (one argument, not one per event: packing arguments was half of redis-py's cost per batch).
# Returns {} when nobody is elected, else {responsible, r2, r3, ...}: "+" handled now, "~" standby,
# anything else the team that has it.
DECIDE_MANY = """
local resp = redis.call('HGET', KEYS[1], 'team')
if not resp then return {} end
local out, needle, i = {resp}, ',' .. resp .. ',', 1
for covers in string.gmatch(ARGV[2], '[^;]+') do
  i = i + 1
  local owner = redis.call('GET', KEYS[i])
  if owner then
    out[i] = owner
  elseif string.find(',' .. covers .. ',', needle, 1, true) then
    redis.call('SET', KEYS[i], resp, 'EX', ARGV[1])
    out[i] = '+'
  else
    out[i] = '~'
  end
end
return out
"""

# KEYS: claim. ARGV: team, ttl (s). False if won, else the team that has it.
CLAIM = """
local owner = redis.call('GET', KEYS[1])
if owner then return owner end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return false
"""

# An interaction's ack, recorded once by the process that won its claim (the first record stays):
# a list of one element, so that copies waiting elsewhere block on it (BLMOVE onto itself, which
# leaves it in place for the next). KEYS: the ack list. ARGV: the ack (JSON), ttl (ms). 1 if
# recorded, 0 if one was already.
RECORD_ACK = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# The election hash: team, candidates, epoch, pinned, reason (what made the last change), left
# (teams whose bot left the conversation: never candidates there until they join again). A hash
# without a team is a cleared election: the next event elects afresh, under the next epoch.

# KEYS: election. ARGV: proposed teams csv (best first), candidates csv, the teams whose bot just
# joined (csv, '' if none). Keeps a sitting team; merges candidates. Returns the election's fields.
ELECT = """
local cur = redis.call('HMGET', KEYS[1], 'team', 'candidates', 'epoch', 'pinned', 'reason', 'left')
local joined, left = {}, {}
for t in string.gmatch(ARGV[3], '([^,]+)') do joined[t] = true end
for t in string.gmatch(cur[6] or '', '([^,]+)') do
  if not joined[t] then left[t] = true end
end
local team = cur[1]
if not team then  -- electing: the first proposed team still in the conversation, else the last
  local last
  for t in string.gmatch(ARGV[1], '([^,]+)') do
    last = t
    if not left[t] then team = t; break end
  end
  if not team then team = last; left[team] = nil end
end
local seen, list = {}, {}
for c in string.gmatch((cur[2] or '') .. ',' .. ARGV[2] .. ',' .. team, '([^,]+)') do
  if not seen[c] and not left[c] then seen[c] = true; table.insert(list, c) end
end
table.sort(list)
local cands = table.concat(list, ',')
local stay = {}
for t in pairs(left) do table.insert(stay, t) end
table.sort(stay)
redis.call('HSET', KEYS[1], 'candidates', cands, 'left', table.concat(stay, ','))
if cur[1] then
  return {cur[1], cands, cur[3], cur[4] or '0', cur[5] or ''}
end
local epoch = tostring(tonumber(cur[3] or '0') + 1)
redis.call('HSET', KEYS[1], 'team', team, 'epoch', epoch, 'pinned', 0, 'reason', 'elected')
return {team, cands, epoch, '0', 'elected'}
"""

# KEYS: election. ARGV: expected team, new team, reason. Compare-and-set: only the team that saw
# the responsible team die moves the election, and only once.
TAKEOVER = """
local cur = redis.call('HMGET', KEYS[1], 'team', 'candidates', 'epoch', 'pinned', 'reason')
if not cur[1] then return false end
if cur[1] ~= ARGV[1] then return {cur[1], cur[2], cur[3], cur[4] or '0', cur[5] or ''} end
local seen, list = {}, {}
for c in string.gmatch((cur[2] or '') .. ',' .. ARGV[2], '([^,]+)') do
  if not seen[c] then seen[c] = true; table.insert(list, c) end
end
table.sort(list)
local cands = table.concat(list, ',')
local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('HSET', KEYS[1], 'team', ARGV[2], 'candidates', cands, 'pinned', 0, 'reason', ARGV[3])
return {ARGV[2], cands, tostring(epoch), '0', ARGV[3]}
"""

# KEYS: election. ARGV: departing teams csv, successor ('' for none), reason, '1' if their bots
# left the conversation ('0': stopped teams). Returns {moved by this call '1'/'0', then the
# election's fields, team '' when it has none}.
DEPART = """
local cur = redis.call('HMGET', KEYS[1], 'team', 'candidates', 'epoch', 'pinned', 'reason', 'left')
local gone, forget = {}, ARGV[4] == '1'
for t in string.gmatch(ARGV[1], '([^,]+)') do gone[t] = true end
local moving = cur[1] and gone[cur[1]]
local seen, list = {}, {}
for c in string.gmatch((cur[2] or '') .. ',' .. (moving and ARGV[2] or ''), '([^,]+)') do
  if not seen[c] and not (forget and gone[c]) then seen[c] = true; table.insert(list, c) end
end
table.sort(list)
local cands = table.concat(list, ',')
if not cur[1] and not forget then return {'0', '', cands, cur[3] or '0', '0', cur[5] or ''} end
redis.call('HSET', KEYS[1], 'candidates', cands)
if forget then
  local had, left = {}, {}
  for t in string.gmatch((cur[6] or '') .. ',' .. ARGV[1], '([^,]+)') do
    if not had[t] then had[t] = true; table.insert(left, t) end
  end
  table.sort(left)
  redis.call('HSET', KEYS[1], 'left', table.concat(left, ','))
end
if not moving then
  return {'0', cur[1] or '', cands, cur[3] or '0', cur[4] or '0', cur[5] or ''}
end
local epoch = tostring(redis.call('HINCRBY', KEYS[1], 'epoch', 1))
redis.call('HSET', KEYS[1], 'pinned', 0, 'reason', ARGV[3])
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], 'team')
else
  redis.call('HSET', KEYS[1], 'team', ARGV[2])
end
return {'1', ARGV[2], cands, epoch, '0', ARGV[3]}
"""

# A key held by one holder for a while: a team's heartbeat, a scheduler lock.
# KEYS: the key. ARGV: holder, ttl ms. Take it if free, extend it if ours.
HOLD = """
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# The same for many teams' heartbeats at once (standalone Redis only: the keys live in different
# slots). KEYS: heartbeat keys. ARGV: holder, ttl ms.
HOLD_MANY = """
for i = 1, #KEYS do
  local cur = redis.call('GET', KEYS[i])
  if not cur or cur == ARGV[1] then redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2]) end
end
return #KEYS
"""

# KEYS: a held key. ARGV: holder. Let go of it if ours.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Ownership leases (gridbot/ownership.py). KEYS share the connection's {o:<connection key>} tag.
# KEYS: owner, epoch. ARGV: holder, ttl ms. Take a free lease under a fresh fencing epoch.
OWN_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local epoch = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'epoch', epoch)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return epoch
"""

# KEYS: owner. ARGV: holder, epoch, ttl ms. Renew only the very lease we were granted.
OWN_RENEW = """
local cur = redis.call('HMGET', KEYS[1], 'holder', 'epoch')
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

# The same for many leases on one server (not a Cluster: the keys are in many slots), one command
# instead of one script call each. KEYS: owners. ARGV: holder, ttl ms, then one epoch per key.
OWN_RENEW_MANY = """
local out = {}
for i = 1, #KEYS do
  local cur = redis.call('HMGET', KEYS[i], 'holder', 'epoch')
  if cur[1] == ARGV[1] and cur[2] == ARGV[i + 2] then
    redis.call('PEXPIRE', KEYS[i], ARGV[2])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"""

# KEYS: owner. ARGV: holder, epoch.
OWN_RELEASE = """
local cur = redis.call('HMGET', KEYS[1], 'holder', 'epoch')
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then return 0 end
return redis.call('DEL', KEYS[1])
"""

# KEYS: owner, next. ARGV: holder, epoch, successor, ttl ms. One pending handoff at a time.
OWN_OFFER = """
local cur = redis.call('HMGET', KEYS[1], 'holder', 'epoch')
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then return 0 end
if redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[4]) then return 1 end
return 0
"""

# KEYS: owner, epoch, next. ARGV: successor, ttl ms. The successor's socket is up: it takes over.
OWN_TAKE = """
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return false end
redis.call('DEL', KEYS[3])
local epoch = redis.call('INCR', KEYS[2])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'epoch', epoch)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return epoch
"""

# KEYS: next. ARGV: successor.
OWN_CANCEL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Process membership. KEYS: members (zset of expiries), members info (hash). Redis's own clock
# decides expiry, so processes with skewed clocks still agree on who is alive.
_EXPIRE_MEMBERS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #dead > 0 then
  redis.call('ZREM', KEYS[1], unpack(dead))
  redis.call('HDEL', KEYS[2], unpack(dead))
end
"""

# ARGV: instance, document, ttl ms.
MEMBER_BEAT = (
    _EXPIRE_MEMBERS
    + """
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
return 1
"""
)

MEMBERS = (
    _EXPIRE_MEMBERS
    + """
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
if #ids == 0 then return {} end
local docs = redis.call('HMGET', KEYS[2], unpack(ids))
local out = {}
for i, id in ipairs(ids) do
  if docs[i] then table.insert(out, id); table.insert(out, docs[i]) end
end
return out
"""
)


@dataclass(frozen=True, slots=True)
class Scripts:
    """Every script, registered on one client (redis-py runs each by its SHA, loading it once)."""

    decide_many: AsyncScript
    claim: AsyncScript
    elect: AsyncScript
    takeover: AsyncScript
    depart: AsyncScript
    hold: AsyncScript
    hold_many: AsyncScript
    release: AsyncScript
    own_acquire: AsyncScript
    own_renew: AsyncScript
    own_renew_many: AsyncScript
    own_release: AsyncScript
    own_offer: AsyncScript
    own_take: AsyncScript
    own_cancel: AsyncScript
    member_beat: AsyncScript
    members: AsyncScript
    record_ack: AsyncScript

    @classmethod
    def register(cls, client: Client) -> Scripts:
        script = client.register_script
        return cls(
            decide_many=script(DECIDE_MANY),
            claim=script(CLAIM),
            elect=script(ELECT),
            takeover=script(TAKEOVER),
            depart=script(DEPART),
            hold=script(HOLD),
            hold_many=script(HOLD_MANY),
            release=script(RELEASE),
            own_acquire=script(OWN_ACQUIRE),
            own_renew=script(OWN_RENEW),
            own_renew_many=script(OWN_RENEW_MANY),
            own_release=script(OWN_RELEASE),
            own_offer=script(OWN_OFFER),
            own_take=script(OWN_TAKE),
            own_cancel=script(OWN_CANCEL),
            member_beat=script(MEMBER_BEAT),
            members=script(MEMBERS),
            record_ack=script(RECORD_ACK),
        )


ELECTION_FIELDS = ("team", "candidates", "epoch", "pinned", "reason")


def election(reply: Sequence[Any]) -> Election:
    """The election fields ELECT, TAKEOVER and DEPART return."""
    team, cands, epoch, pinned, reason = reply
    return Election(team, tuple(filter(None, cands.split(","))), int(epoch), pinned == "1", reason)


def stored_election(fields: Sequence[Any]) -> Election | None:
    """An election hash's fields (HMGET of ELECTION_FIELDS); None if it has no team."""
    team, cands, epoch, pinned, reason = fields
    return election([team, cands or "", epoch or "1", pinned or "0", reason or ""]) if team else None
