"""Priorities across arq queues: weighted (default 6/3/1) or strict.

arq's worker serves one queue (``queue_name``) and starts the jobs it reads in score order.
statefleet keeps arq's queue layout (one ZSET per queue, member = job id, score = ms when
runnable, ``arq:in-progress:<id>`` as the lock) and replaces only the *dequeue*: a worker
serves several queues, and each poll takes as many jobs as it has free slots with one Lua
script (:data:`DEQUEUE`), atomically:

1. Python draws one queue per free slot: ``strict`` always draws the first queue; weighted
   draws queue ``i`` with probability ``weight_i / sum(weights)`` (asynq's rule).
2. The script serves each draw from the drawn queue: the first ready job (score <= now)
   with no in-progress key; if that queue is paused or has none, from the first queue in
   priority order that has one (so no slot idles while any served queue has work).
3. A worker started for chosen machines (``--machines a,b``) reads a queue's candidates
   from the per-machine indexes ``P:mqueue:<queue>:<machine>`` (same members and scores as
   the queue, written by the enqueue) instead of the queue itself, merged in score order.
   So it never takes another machine's job, and another machine's backlog at the head of a
   shared queue cannot hide its own jobs. The index is checked against the queue: a member
   the queue no longer has is dropped, a re-scored one is re-scored.
4. Each job taken gets its in-progress key (as arq's ``start_jobs`` sets it under WATCH),
   with a TTL that the worker's heartbeat renews while the job runs; and the script does
   what arq's ``run_job`` would do next in a MULTI/EXEC of its own: it reads the job's
   record and counts the try (``INCR`` of ``arq:retry:<id>``, kept 88,400 s as arq does),
   returning both. A taken job thus costs no round trip of its own before it runs.

Reading only as many jobs as there are free slots is what makes strict order hold: arq reads
up to ``queue_read_limit`` ids and then waits for slots with that stale list, so a
``critical`` job enqueued meanwhile would wait behind them.

A queue's name is the batch's ``queue`` option, or its priority: ``critical``,
``default``, ``low``, or a number 0-10 (0-3 low, 4-7 default, 8-10 critical).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from statefleet.statemachine.batch import PRIORITIES, priority_name

__all__ = [
    "DEFAULT_QUEUES",
    "DEQUEUE",
    "QueueSelection",
    "parse_queues",
    "priority_name",
]

#: critical:6, default:3, low:1
DEFAULT_QUEUES: tuple[tuple[str, int], ...] = (("critical", 6), ("default", 3), ("low", 1))


def parse_queues(spec: str | Sequence[str] | None) -> list[tuple[str, int]]:
    """``"critical:6,default:3,low:1"`` (or a list of such items) -> [(name, weight)]; a
    missing weight is 1. The order given is the strict order."""
    if spec is None:
        return list(DEFAULT_QUEUES)
    items = spec.split(",") if isinstance(spec, str) else [p for s in spec for p in s.split(",")]
    queues: list[tuple[str, int]] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        name, _, weight = item.partition(":")
        name = name.strip()
        if not name:
            raise ValueError(f"empty queue name in {spec!r}")
        try:
            value = int(weight) if weight.strip() else 1
        except ValueError:
            raise ValueError(f"queue weight must be an integer: {item!r}") from None
        if value < 1:
            raise ValueError(f"queue weight must be at least 1: {item!r}")
        if any(name == existing for existing, _ in queues):
            raise ValueError(f"queue {name!r} is listed twice")
        queues.append((name, value))
    if not queues:
        raise ValueError("no queues given")
    return queues


@dataclass(frozen=True, slots=True)
class QueueSelection:
    """Which queues a worker serves, with their weights, and how it picks among them."""

    queues: tuple[tuple[str, int], ...] = DEFAULT_QUEUES
    strict: bool = False

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.queues]

    def draws(self, slots: int, rng: random.Random | None = None) -> list[int]:
        """One queue index (0-based) per free slot."""
        if self.strict or len(self.queues) == 1:
            return [0] * slots
        weights = [weight for _, weight in self.queues]
        choices = (rng or random).choices
        return choices(range(len(self.queues)), weights=weights, k=slots)


#: KEYS[1] = paused set, KEYS[2..n+1] = queue zsets (in priority order).
#: ARGV = now_ms, in-progress key prefix, in-progress ttl ms, window, machine index prefix
#:        ("P:mqueue:"), machine filter (",a,b," or ""), job key prefix, retry key prefix,
#:        n, n queue names, then the draws (1-based).
#: Returns a flat list of 5 per job: queue index (1-based), job id, score, the job's record
#: (nil if it is gone), its try number (the retry counter after INCR).
DEQUEUE = """
local now = tonumber(ARGV[1])
local ipp = ARGV[2]
local ttl = ARGV[3]
local window = tonumber(ARGV[4])
local mqp = ARGV[5]
local machines = ARGV[6]
local jp = ARGV[7]
local rp = ARGV[8]
local n = tonumber(ARGV[9])
local off = 9
local status = {}
local cand = {}
local pos = {}
for i = 1, n do
  if redis.call('SISMEMBER', KEYS[1], ARGV[off + i]) == 1 then
    status[i] = 'paused'
  else
    status[i] = 'unread'
  end
end
local function read_queue(i, list)
  local ids = redis.call('ZRANGEBYSCORE', KEYS[1 + i], '-inf', now,
                        'WITHSCORES', 'LIMIT', 0, window)
  for j = 1, #ids, 2 do
    local id = ids[j]
    if redis.call('EXISTS', ipp .. id) == 0 then
      list[#list + 1] = {id, ids[j + 1]}
    end
  end
end
local function read_machines(i, list)
  for machine in string.gmatch(machines, '[^,]+') do
    local index = mqp .. ARGV[off + i] .. ':' .. machine
    local ids = redis.call('ZRANGEBYSCORE', index, '-inf', now,
                          'WITHSCORES', 'LIMIT', 0, window)
    for j = 1, #ids, 2 do
      local id = ids[j]
      local score = redis.call('ZSCORE', KEYS[1 + i], id)
      if not score then
        redis.call('ZREM', index, id)
      elseif tonumber(score) > now then
        redis.call('ZADD', index, score, id)
      elseif redis.call('EXISTS', ipp .. id) == 0 then
        list[#list + 1] = {id, score}
      end
    end
  end
  table.sort(list, function(a, b) return tonumber(a[2]) < tonumber(b[2]) end)
end
local function read(i)
  local list = {}
  if machines == '' then read_queue(i, list) else read_machines(i, list) end
  cand[i] = list
  pos[i] = 1
  status[i] = 'read'
end
local function take(i)
  if status[i] == 'paused' then return nil end
  if status[i] == 'unread' then read(i) end
  local item = cand[i][pos[i]]
  if item then pos[i] = pos[i] + 1 end
  return item
end
local out = {}
for d = off + 1 + n, #ARGV do
  local q = tonumber(ARGV[d])
  local item = take(q)
  if not item then
    for i = 1, n do
      item = take(i)
      if item then q = i break end
    end
  end
  if not item then break end
  local id = item[1]
  redis.call('SET', ipp .. id, '1', 'PX', ttl)
  local try = redis.call('INCR', rp .. id)
  redis.call('EXPIRE', rp .. id, 88400)
  out[#out + 1] = q
  out[#out + 1] = id
  out[#out + 1] = item[2]
  out[#out + 1] = redis.call('GET', jp .. id)
  out[#out + 1] = try
end
return out
"""


def queue_for(priority: str | int = "default", queue: str | None = None) -> str:
    """The queue a batch's jobs go to: its ``queue`` option, else its priority's name."""
    return queue if queue else priority_name(priority)


__all__ += ["PRIORITIES", "queue_for"]
