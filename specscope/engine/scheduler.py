"""Continuous batching: requests wait in a queue, up to `num_slots` sequences run at once.

Each running sequence owns one KV-cache slot and advances by its own acceptance length per step
(ragged progress). A finished sequence frees its slot, which the next queued request takes at the
start of the following step; its prefill then shares the step's target forward with the others'
decodes. A sequence stops at a stop token (kept as its last output token) or at max_new_tokens; a
step that commits past either is clipped there.

A request that cannot run (its prompt plus max_new_tokens does not fit the context) finishes at
once with an error message; the others are unaffected. `cancel` finishes a queued or running request
at once (finish_reason "cancelled": a server's client went away) and frees its slot.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Request:
    """One prompt to complete."""

    id: str
    prompt_token_ids: list[int]
    max_new_tokens: int | None = None  # None: the engine's setting
    meta: dict = field(default_factory=dict)  # passed through to the result (e.g. the workload's Prompt)


class Sequence:
    """A request's state while it runs: its tokens, its slot, and its per-step proposed/accepted counts."""

    def __init__(self, request: Request, slot: int, max_new_tokens: int, capacity: int):
        self.request, self.slot, self.max_new_tokens = request, slot, max_new_tokens
        self.prompt_len = len(request.prompt_token_ids)
        self.tokens = np.zeros(capacity, dtype=np.int64)  # prompt + output, preallocated
        self.tokens[: self.prompt_len] = request.prompt_token_ids
        self.length = self.prompt_len
        self.cached = 0  # tokens whose K/V the target cache holds (= length - 1 once decoding)
        self.proposed: list[int] = []  # per decode step
        self.accepted: list[int] = []  # per decode step, after clipping
        self.finish_reason: str | None = None
        self.error: str | None = None
        self.hidden = None  # target's last hidden states, kept only for proposers that need them
        self.start_time = self.end_time = time.perf_counter()  # admission; end_time set when it finishes
        self.first_token_time: float | None = None  # when its first output token (the prefill's) was committed

    @property
    def context(self) -> np.ndarray:
        """Prompt + output so far (a view)."""
        return self.tokens[: self.length]

    @property
    def output(self) -> np.ndarray:
        return self.tokens[self.prompt_len : self.length]

    @property
    def num_output(self) -> int:
        return self.length - self.prompt_len

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None

    def commit(self, new_tokens: np.ndarray, stop_ids: np.ndarray) -> int:
        """Append a step's committed tokens, clipped at a stop token or max_new_tokens. Returns how many were kept."""
        room = self.max_new_tokens - self.num_output
        keep = new_tokens[:room]
        hits = np.flatnonzero(np.isin(keep, stop_ids)) if stop_ids.size else ()
        if len(hits):
            keep = keep[: hits[0] + 1]
            self.finish_reason = "stop"
        self.tokens[self.length : self.length + len(keep)] = keep
        if self.first_token_time is None and len(keep):
            self.first_token_time = time.perf_counter()
        self.length += len(keep)
        if self.finish_reason is None and self.num_output >= self.max_new_tokens:
            self.finish_reason = "length"
        return len(keep)


class Scheduler:
    """Queue + slots. `admit()` fills free slots; `retire()` frees the slots of finished sequences."""

    def __init__(self, requests: list[Request], num_slots: int, max_new_tokens: int, max_context: int, extra: int):
        """`max_context`: longest prompt + output the model takes; `extra`: room a step may write past
        the committed length (k drafts + the bonus), allocated on top."""
        self.queue = deque(requests)
        self.num_slots, self.max_new_tokens = num_slots, max_new_tokens
        self.max_context, self.extra = max_context, extra
        self.free = list(range(num_slots - 1, -1, -1))  # pop() hands out slot 0 first
        self.running: list[Sequence] = []
        self.finished: list[Sequence] = []  # finished since the last `take_finished()`

    @property
    def done(self) -> bool:
        return not self.queue and not self.running

    def max_new(self, request: Request) -> int:
        return request.max_new_tokens or self.max_new_tokens

    def capacity(self, request: Request) -> int:
        """Cache positions the request may use: prompt + new tokens + a step's lookahead."""
        return len(request.prompt_token_ids) + self.max_new(request) + self.extra

    def check(self, request: Request) -> str | None:
        """Why `request` cannot run, or None."""
        n, new = len(request.prompt_token_ids), self.max_new(request)
        if n == 0:
            return "empty prompt"
        if n + new > self.max_context:
            return (
                f"prompt of {n} tokens + max_new_tokens {new} exceeds the model's context of "
                f"{self.max_context} tokens; use a shorter prompt or fewer new tokens"
            )
        return None

    def admit(self) -> list[Sequence]:
        """Start queued requests in free slots; the running list stays ordered by slot."""
        started = []
        while self.free and self.queue:
            request = self.queue.popleft()
            error = self.check(request)
            if error:
                seq = Sequence(request, -1, self.max_new(request), len(request.prompt_token_ids))
                seq.error, seq.finish_reason = error, "error"
                self.finished.append(seq)
                continue
            started.append(Sequence(request, self.free.pop(), self.max_new(request), self.capacity(request)))
        if started:
            self.running = sorted(self.running + started, key=lambda s: s.slot)
        return started

    def retire(self) -> None:
        """Move finished sequences out of the running list and free their slots."""
        done = [s for s in self.running if s.finished]
        if done:
            now = time.perf_counter()
            for seq in done:
                seq.end_time = now
            self.running = [s for s in self.running if not s.finished]
            self.free.extend(s.slot for s in done)
            self.finished.extend(done)

    def cancel(self, request_id: str) -> bool:
        """Finish request `request_id` now with finish_reason 'cancelled': a queued one leaves the queue, a
        running one frees its slot (its output so far is kept). False if it is neither queued nor running."""
        for request in self.queue:
            if request.id == request_id:
                self.queue.remove(request)
                seq = Sequence(request, -1, self.max_new(request), len(request.prompt_token_ids))
                seq.finish_reason = "cancelled"
                self.finished.append(seq)
                return True
        for seq in self.running:
            if seq.request.id == request_id:
                seq.finish_reason = "cancelled"
                self.retire()
                return True
        return False

    def take_finished(self) -> list[Sequence]:
        out, self.finished = self.finished, []
        return out
