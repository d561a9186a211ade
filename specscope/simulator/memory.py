"""The batch sizes that fit: a cost model that knows its device memory (`max_kv_tokens`) caps the batch.

A request holds up to prompt + output + 1 KV tokens (its last step verifies one more); B requests
of a trace fit when B x the trace's longest request fits in `max_kv_tokens` (a serving engine that
admitted more would have to preempt). Batch sizes above that cap are simulated at the cap, once, and
the caller says so; a trace whose longest request alone does not fit is an error. Cost models without
a memory limit (fitted, presets) leave the batch sizes as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

from specscope.costs.model import CostModel
from specscope.errors import SpecscopeError
from specscope.formats.trace import Trace


@dataclass(frozen=True)
class BatchFit:
    sizes: list[int]  # the batch sizes to simulate, in the order asked, none above the cap
    cap: int | None  # the largest batch that fits (None: no memory limit)
    capped: list[int]  # requested sizes above the cap

    def note(self, trace: Trace, costs: CostModel) -> str:
        """One line for the user, or '' when nothing was capped."""
        if not self.capped:
            return ""
        return (f"{trace.name}: cost model '{costs.name}' holds {costs.max_kv_tokens:,} KV tokens and the longest "
                f"request needs {longest_request(trace):,}: batch size(s) {', '.join(map(str, self.capped))} do not "
                f"fit, simulated at {self.cap} (the largest that fits)")


def longest_request(trace: Trace) -> int:
    """KV tokens the trace's longest request holds at its last step."""
    return max(r.prompt_len + r.gen_len(trace.proposers) + 1 for r in trace.requests)


def batch_cap(trace: Trace, costs: CostModel) -> int | None:
    """The largest batch of this trace's requests that fits (None: the cost model sets no limit)."""
    if costs.max_kv_tokens is None:
        return None
    need = longest_request(trace)
    if need > costs.max_kv_tokens:
        where = trace.path if trace.path is not None else trace.name
        raise SpecscopeError(f"{where}: the longest request needs {need:,} KV tokens but cost model '{costs.name}' holds "
                             f"{costs.max_kv_tokens:,} next to the weights; use more devices (--tp) or a smaller dtype")
    return costs.max_kv_tokens // need


def fit_batch_sizes(trace: Trace, batch_sizes, costs: CostModel) -> BatchFit:
    """The batch sizes to simulate for this trace under this cost model's memory."""
    cap = batch_cap(trace, costs)
    if cap is None:
        return BatchFit(list(batch_sizes), None, [])
    capped = [b for b in batch_sizes if b > cap]
    return BatchFit(list(dict.fromkeys(min(b, cap) for b in batch_sizes)), cap, capped)
