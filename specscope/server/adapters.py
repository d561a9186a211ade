"""SD acceptance from each engine's own response payload, normalised into one `Acceptance` per request.

    acc = read_acceptance(response, completion_tokens)    # the first adapter whose fields the response carries
    acc.record()   # {"source", "steps", "drafted", "accepted", "k", "histogram", "mean_acc_len", ...}

`response` is a whole JSON response, or a stream folded into one (`client.fold_stream`: the root fields
of every chunk, later ones winning, and the choice's non-delta fields). Each adapter reads one engine's
fields and nothing else; none branches on an engine's name, and which one applies depends only on what
the response carries. The terms are DESIGN.md's: a step is one verification step, accepted counts draft
tokens kept (not the bonus), mean acceptance length = 1 + accepted / steps.

| adapter | fields read | where documented |
| --- | --- | --- |
| vLLM (>= 0.29, `--per-request-spec-decode-metrics summary/detailed`; specscope serve) | root `metrics.speculative_decoding`: `num_spec_steps`, `num_draft_tokens`, `num_accepted_draft_tokens`, `num_spec_tokens`, `acceptance_histogram`, `mean_acceptance_length`, `draft_acceptance_rate`, detailed: `per_step_accepted`, `per_step_drafted` | vLLM docs, "Per-Request Acceptance Metrics" |
| SGLang, OpenAI endpoints with `"return_spec_tokens_details": true` | root `sglext.spec_tokens_details`: `spec_verify_ct`, `spec_num_correct_drafts`, `spec_num_proposed_drafts`, `spec_accept_length`, `spec_accept_rate`, `spec_correct_drafts_histogram` | SGLang source, `entrypoints/openai/utils.py` (`SpecTokensDetails`) |
| SGLang `/generate` (and choices that carry it) | `meta_info`: `spec_verify_ct`, `spec_accept_length`, `completion_tokens`, where present `spec_accept_token_num`, `spec_draft_token_num` | SGLang `/generate` docs (meta_info); the last two as SGLang clients read them |
| TensorRT-LLM, per choice | `speculative_decoding` (read with vLLM's field names), else `avg_decoded_tokens_per_iter` (a mean acceptance length, bonus included; no counts) | TensorRT-LLM OpenAI server |
| llama.cpp `llama-server` | root `timings.draft_n`, `timings.draft_n_accepted` (present when drafting happened), `timings.predicted_n` | llama.cpp server README (`timings`) |

SGLang's `spec_accept_length` is completion tokens / verification steps: it counts the first output token,
which prefill produced and no step verified. The adapters recompute (completion - 1) / steps where the
counts are absent, so every engine's mean acceptance length means the same thing; the engine's own value
is kept in `reported_mean_acc_len`.
llama.cpp reports drafted and accepted tokens but no step count: steps = output tokens - 1 - accepted
(each step commits its accepted drafts + 1; the first output token came from prefill).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable


class PayloadError(ValueError):
    """A response's SD fields are present but not what the engine documents."""


@dataclass
class Acceptance:
    """One request's SD acceptance, whichever engine reported it."""

    source: str  # which payload field the numbers came from
    steps: int | None = None  # verification steps
    drafted: int | None = None  # draft tokens proposed
    accepted: int | None = None  # draft tokens accepted
    k: int | None = None  # drafts per step (the most a step may propose)
    histogram: list[int] | None = None  # index j: steps that accepted exactly j drafts
    per_step_drafted: list[int] | None = None
    per_step_accepted: list[int] | None = None
    reported_mean_acc_len: float | None = None  # the engine's own figure, as it defines it

    @property
    def mean_acc_len(self) -> float | None:
        """1 + accepted / steps (DESIGN.md's), else the engine's reported figure."""
        if self.steps and self.accepted is not None:
            return 1.0 + self.accepted / self.steps
        return self.reported_mean_acc_len

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.drafted if self.drafted and self.accepted is not None else None

    def record(self) -> dict:
        """The `sd` field of a `requests.jsonl` record (the per-step arrays go to its `steps` field)."""
        out = {k: v for k, v in asdict(self).items() if v is not None and not k.startswith("per_step")}
        out["mean_acc_len"] = self.mean_acc_len
        out["acceptance_rate"] = self.acceptance_rate
        return out


def _int(obj: dict, key: str, where: str, required: bool = True) -> int | None:
    value = obj.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or int(value) != value:
        raise PayloadError(f"{where}.{key} = {value!r}: expected a non-negative integer")
    return int(value)


def _number(obj: dict, key: str, where: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PayloadError(f"{where}.{key} = {value!r}: expected a number")
    return float(value)


def _ints(obj: dict, key: str, where: str) -> list[int] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                               for v in value):
        raise PayloadError(f"{where}.{key}: expected a list of non-negative integers")
    return list(value)


def _first_choice(response: dict) -> dict:
    choices = response.get("choices")
    return choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}


def _vllm_shape(sd, where: str, source: str) -> Acceptance:
    """vLLM's `speculative_decoding` object (vLLM docs, "Per-Request Acceptance Metrics")."""
    if not isinstance(sd, dict):
        raise PayloadError(f"{where}: expected an object")
    acc = Acceptance(
        source=source,
        steps=_int(sd, "num_spec_steps", where),
        drafted=_int(sd, "num_draft_tokens", where),
        accepted=_int(sd, "num_accepted_draft_tokens", where),
        k=_int(sd, "num_spec_tokens", where, required=False),
        histogram=_ints(sd, "acceptance_histogram", where),
        per_step_accepted=_ints(sd, "per_step_accepted", where),
        per_step_drafted=_ints(sd, "per_step_drafted", where),
        reported_mean_acc_len=_number(sd, "mean_acceptance_length", where),
    )
    if acc.accepted > acc.drafted:
        raise PayloadError(f"{where}: num_accepted_draft_tokens {acc.accepted} > num_draft_tokens {acc.drafted}")
    if (acc.per_step_accepted is None) != (acc.per_step_drafted is None):
        raise PayloadError(f"{where}: per_step_accepted and per_step_drafted come together")
    if acc.per_step_accepted is not None:
        a, d = acc.per_step_accepted, acc.per_step_drafted
        if len(a) != len(d) or len(a) != acc.steps or sum(a) != acc.accepted or sum(d) != acc.drafted \
                or any(x > y for x, y in zip(a, d)):
            raise PayloadError(f"{where}: per_step_accepted / per_step_drafted disagree with the totals "
                               f"(steps {acc.steps}, drafted {acc.drafted}, accepted {acc.accepted})")
    return acc


def vllm_metrics(response: dict, completion_tokens: int | None) -> Acceptance | None:
    metrics = response.get("metrics")
    sd = metrics.get("speculative_decoding") if isinstance(metrics, dict) else None
    if sd is None:
        return None
    return _vllm_shape(sd, "metrics.speculative_decoding", "metrics.speculative_decoding")


def _sglang_mean(steps: int | None, completion_tokens: int | None, reported: float | None) -> float | None:
    """SGLang's accept length counts the prefill's token: (completion - 1) / steps, from either figure."""
    if not steps:
        return None
    if completion_tokens is None and reported is not None:
        completion_tokens = round(reported * steps)
    return (completion_tokens - 1) / steps if completion_tokens else None


def sglang_spec_tokens_details(response: dict, completion_tokens: int | None) -> Acceptance | None:
    ext = response.get("sglext")
    details = ext.get("spec_tokens_details") if isinstance(ext, dict) else None
    if details is None:
        return None
    where = "sglext.spec_tokens_details"
    if not isinstance(details, dict):
        raise PayloadError(f"{where}: expected an object")
    steps = _int(details, "spec_verify_ct", where)
    acc = Acceptance(source=where, steps=steps,
                     drafted=_int(details, "spec_num_proposed_drafts", where, required=False),
                     accepted=_int(details, "spec_num_correct_drafts", where, required=False),
                     histogram=_ints(details, "spec_correct_drafts_histogram", where) or None,
                     reported_mean_acc_len=_number(details, "spec_accept_length", where))
    return _fill_from_total(acc, completion_tokens)


def sglang_meta_info(response: dict, completion_tokens: int | None) -> Acceptance | None:
    meta, where = response.get("meta_info"), "meta_info"
    if isinstance(meta, list):  # /generate with a batch of one
        meta = meta[0] if meta else None
    if not isinstance(meta, dict) or "spec_verify_ct" not in meta:
        meta, where = _first_choice(response).get("meta_info"), "choices[0].meta_info"
    if not isinstance(meta, dict) or "spec_verify_ct" not in meta:
        return None
    tokens = _int(meta, "completion_tokens", where, required=False)
    acc = Acceptance(source=where, steps=_int(meta, "spec_verify_ct", where),
                     drafted=_int(meta, "spec_draft_token_num", where, required=False),
                     accepted=_int(meta, "spec_accept_token_num", where, required=False),
                     reported_mean_acc_len=_number(meta, "spec_accept_length", where))
    return _fill_from_total(acc, tokens if tokens is not None else completion_tokens)


def _fill_from_total(acc: Acceptance, completion_tokens: int | None) -> Acceptance:
    """Accepted drafts from the output length where the engine gives only steps (SGLang)."""
    if acc.accepted is None and acc.steps:
        mean = _sglang_mean(acc.steps, completion_tokens, acc.reported_mean_acc_len)
        if mean is not None:
            acc.accepted = max(0, round((mean - 1.0) * acc.steps))
    return acc


def trtllm_speculative_decoding(response: dict, completion_tokens: int | None) -> Acceptance | None:
    sd = _first_choice(response).get("speculative_decoding")
    if sd is None:
        return None
    return _vllm_shape(sd, "choices[0].speculative_decoding", "choices[0].speculative_decoding")


def trtllm_avg_decoded(response: dict, completion_tokens: int | None) -> Acceptance | None:
    choice = _first_choice(response)
    if choice.get("avg_decoded_tokens_per_iter") is None:
        return None
    value = _number(choice, "avg_decoded_tokens_per_iter", "choices[0]")
    if value < 1.0:
        raise PayloadError(f"choices[0].avg_decoded_tokens_per_iter = {value}: a mean acceptance length is >= 1")
    return Acceptance(source="choices[0].avg_decoded_tokens_per_iter", reported_mean_acc_len=value)


def llamacpp_timings(response: dict, completion_tokens: int | None) -> Acceptance | None:
    timings = response.get("timings")
    if not isinstance(timings, dict) or timings.get("draft_n") is None:
        return None
    where = "timings"
    drafted, accepted = _int(timings, "draft_n", where), _int(timings, "draft_n_accepted", where)
    if accepted > drafted:
        raise PayloadError(f"timings: draft_n_accepted {accepted} > draft_n {drafted}")
    predicted = _int(timings, "predicted_n", where, required=False)
    tokens = predicted if predicted is not None else completion_tokens
    steps = tokens - 1 - accepted if tokens is not None and tokens - 1 - accepted > 0 else None
    return Acceptance(source="timings.draft_n", steps=steps, drafted=drafted, accepted=accepted)


Adapter = Callable[[dict, "int | None"], "Acceptance | None"]
ADAPTERS: list[tuple[str, Adapter]] = [  # (name, adapter): tried in order, the first that applies wins
    ("vllm", vllm_metrics),
    ("sglang-openai", sglang_spec_tokens_details),
    ("sglang-generate", sglang_meta_info),
    ("trtllm", trtllm_speculative_decoding),
    ("trtllm-avg", trtllm_avg_decoded),
    ("llamacpp", llamacpp_timings),
]


def read_acceptance(response: dict, completion_tokens: int | None = None) -> Acceptance | None:
    """The request's acceptance from the first adapter whose fields the response carries; None if none does.
    Raises PayloadError when an engine's fields are there but malformed."""
    for _, adapter in ADAPTERS:
        acc = adapter(response, completion_tokens)
        if acc is not None:
            return acc
    return None
