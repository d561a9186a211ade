"""The engine on its own thread, with requests joining and leaving between steps (continuous batching).

    loop = EngineLoop(engine, max_len, on_finished=metrics.observe_finished)
    loop.start()
    loop.submit(Job(Request(id, prompt_ids, max_new_tokens), on_event))   # from any thread
    loop.cancel(id)                                                        # its client went away
    loop.stop()                                                            # finish: every open job is cancelled

The thread runs `Engine.step` while any request is queued or running and sleeps otherwise. After each
step it tells every job what the step committed: `on_event("tokens", [ids])` for new output tokens,
then once `on_event("done", sequence)` (`sequence.finish_reason`: stop, length, cancelled, or error with
`sequence.error`). `on_event` runs on the engine thread and must not block (the server hands the
event to its asyncio loop). Submissions and cancellations wait in a thread-safe inbox until the step in
flight ends, so the engine itself is only ever touched by its thread.

If a step raises (a bug, or memory), every open job gets `("error", message)` and the engine starts
afresh, so one bad step does not take the server down.
"""

from __future__ import annotations

import queue
import threading
import traceback
from dataclasses import dataclass
from typing import Callable

from specscope.engine.scheduler import Request, Sequence

OnEvent = Callable[[str, object], None]


@dataclass
class Job:
    """One request and who hears about it."""

    request: Request
    on_event: OnEvent
    sent: int = 0  # output tokens already reported


class EngineLoop:
    """Runs an engine for a server: `submit` and `cancel` from any thread, the steps on the loop's own."""

    def __init__(self, engine, max_len: int, on_finished: Callable[[Sequence], None] | None = None,
                 idle_wait_s: float = 0.05):
        self.engine, self.max_len = engine, max_len
        self.on_finished = on_finished  # every finished sequence (metrics), on the engine thread
        self.idle_wait_s = idle_wait_s
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stopping = False
        self._jobs: dict[str, Job] = {}
        self.thread = threading.Thread(target=self._run, name="specscope-engine", daemon=True)
        engine.start(max_len)

    # ------------------------------------------------------------------------------ any thread

    def start(self) -> None:
        self.thread.start()

    def submit(self, job: Job) -> None:
        self._inbox.put(("submit", job))
        self._wake.set()

    def cancel(self, request_id: str) -> None:
        self._inbox.put(("cancel", request_id))
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Cancel every open job and end the thread."""
        self._stopping = True
        self._wake.set()
        if self.thread.is_alive():
            self.thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self.thread.is_alive() and not self._stopping

    @property
    def num_running(self) -> int:
        scheduler = self.engine.scheduler
        return len(scheduler.running) if scheduler is not None else 0

    @property
    def num_waiting(self) -> int:
        """Requests submitted that hold no slot yet (read without a lock: a gauge, not an invariant)."""
        scheduler = self.engine.scheduler
        return (len(scheduler.queue) if scheduler is not None else 0) + self._inbox.qsize()

    # ------------------------------------------------------------------------------ engine thread

    def _run(self) -> None:
        while not self._stopping:
            self._take_inbox()
            if self.engine.idle:
                self._wake.wait(self.idle_wait_s)
                self._wake.clear()
                continue
            try:
                self.engine.step()
            except Exception as err:  # noqa: BLE001 - the server must survive a bad step
                traceback.print_exc()
                self._fail_all(f"internal engine error: {type(err).__name__}: {err}")
                self.engine.start(self.max_len)
                continue
            del self.engine.steps[:-1]  # a server runs for days: keep the last step's record only
            self._report()
        self._take_inbox()
        for request_id in list(self._jobs):
            self.engine.cancel(request_id)
        self._report()

    def _take_inbox(self) -> None:
        while True:
            try:
                kind, item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if kind == "submit":
                if self._stopping:
                    item.on_event("error", "the server is shutting down")
                    continue
                self._jobs[item.request.id] = item
                self.engine.submit(item.request)
            elif item in self._jobs:
                self.engine.cancel(item)
                self._report()

    def _report(self) -> None:
        """Tell each job the tokens the last step committed; finished jobs hear `done` and leave."""
        for seq in self.engine.scheduler.running:
            self._send_tokens(seq)
        for seq in self.engine.scheduler.take_finished():
            job = self._send_tokens(seq)
            if self.on_finished is not None:
                self.on_finished(seq)
            if job is not None:
                del self._jobs[seq.request.id]
                _safe(job.on_event, "done", seq)

    def _send_tokens(self, seq: Sequence) -> Job | None:
        job = self._jobs.get(seq.request.id)
        if job is not None and seq.num_output > job.sent:
            new = [int(t) for t in seq.output[job.sent:]]
            job.sent = seq.num_output
            _safe(job.on_event, "tokens", new)
        return job

    def _fail_all(self, message: str) -> None:
        for job in self._jobs.values():
            _safe(job.on_event, "error", message)
        self._jobs.clear()


def _safe(callback: OnEvent, kind: str, payload) -> None:
    """A listener that raises (its event loop closed at shutdown) must not stop the engine thread."""
    try:
        callback(kind, payload)
    except Exception:  # noqa: BLE001
        pass
