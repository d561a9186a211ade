"""The OpenAI HTTP API as `specscope serve` speaks it: request bodies checked into one `Generation`, and responses.

    gen = parse_generation(body, chat=True, served=ServedModel(...), tokenizer=tok)   # or raises ApiError (4xx)
    completion_body(gen, rid, created, text, finish_reason, usage, token_ids, metrics)
    chunk_body(gen, rid, created, delta_text, finish_reason)           # one SSE event of a stream

Accepted: `/v1/completions` (`prompt`: one string or one list of token ids) and `/v1/chat/completions`
(`messages`, rendered with the model's chat template and the assistant cue, exactly as `specscope run`
renders a workload prompt), `max_tokens` (chat: also `max_completion_tokens`), `stream`,
`stream_options.include_usage`, `stop` (a string or a list), and vLLM's `return_token_ids` (the prompt's
token ids at the response root as `prompt_token_ids`, the output's per choice as `token_ids`; in a stream,
each chunk's own `token_ids`). Fields this server does not implement but a client may send by habit are
ignored (`seed`, `user`, `presence_penalty` at 0, ...); those that would change the answer and that it
cannot honour are refused with 400: `n` > 1, `echo`, `logprobs`, and a `temperature` or `top_p` other than
the server's (sampling is set once per server: `specscope serve --temperature`).

Per-request SD metrics follow vLLM's `metrics.speculative_decoding` (vLLM docs, "Per-Request Acceptance
Metrics": `mean_acceptance_length`, `draft_acceptance_rate`, `acceptance_histogram`, `num_spec_steps`,
`num_accepted_draft_tokens`, `num_draft_tokens`, `num_spec_tokens`; `detailed` adds `per_step_accepted`
and `per_step_drafted`). One difference, on purpose: every decode step counts as a verification step,
also one where the proposer drafted nothing (an n-gram without a match: `per_step_drafted` 0, histogram
index 0), as `specscope run` counts them; vLLM counts only steps that drafted. With a proposer that
always drafts the two agree.

Errors have OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

METRICS_LEVELS = ("none", "summary", "detailed")  # --per-request-spec-decode-metrics, as vLLM spells it
COMPLETIONS_DEFAULT_MAX_TOKENS = 16  # OpenAI's (and vLLM's) default for /v1/completions
ROLES = ("system", "user", "assistant")


class ApiError(Exception):
    """A request the server refuses: HTTP `status` with an OpenAI-shaped JSON error body."""

    def __init__(self, status: int, message: str, param: str | None = None, kind: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param = status, message, param
        self.kind = kind or {400: "BadRequestError", 404: "NotFoundError", 429: "RateLimitError",
                             503: "ServiceUnavailableError"}.get(status, "InternalServerError")

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.status}}


@dataclass(frozen=True)
class ServedModel:
    """What one server serves: the name clients ask for, its context, its sampling, its draft budget."""

    name: str
    max_model_len: int  # prompt + output + a step's lookahead must fit
    lookahead: int  # positions a step may write past the committed length (k drafts + the bonus)
    vocab_size: int
    temperature: float = 0.0
    top_p: float = 1.0
    num_spec_tokens: int = 0  # k (the cap under --k adaptive, the nodes of a tree); 0: plain decoding
    metrics_level: str = "detailed"
    proposer: str = "none"  # the proposer's registry name (`a,b` under adaptive), for /version
    method: str = "none"  # how outputs name it, e.g. draft(self:16)

    @property
    def context(self) -> int:
        """Longest prompt + output a request may have."""
        return self.max_model_len - self.lookahead


@dataclass
class Generation:
    """One checked request."""

    chat: bool
    prompt_ids: list[int]
    max_tokens: int
    stream: bool = False
    include_usage: bool = False
    stop: list[str] = field(default_factory=list)
    return_token_ids: bool = False


def parse_generation(body, chat: bool, served: ServedModel, tokenizer) -> Generation:
    """A request body checked and tokenised (raises ApiError: 400 for a bad field, 404 for another model)."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, f"'model' is required: this server serves '{served.name}'", "model")
    if model != served.name:
        raise ApiError(404, f"The model '{model}' does not exist. Available: {served.name}", "model")
    _refuse_unsupported(body, served)
    prompt_ids = _chat_prompt(body, tokenizer) if chat else _completion_prompt(body, tokenizer, served)
    if not prompt_ids:
        raise ApiError(400, "the prompt is empty", "messages" if chat else "prompt")
    room = served.context - len(prompt_ids)
    if room < 1:
        raise ApiError(400, f"the prompt has {len(prompt_ids)} tokens; this server's context holds "
                       f"{served.context} (serve with a larger --max-model-len)", "messages" if chat else "prompt")
    key = "max_completion_tokens" if chat and body.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = body.get(key)
    if max_tokens is None:
        max_tokens = room if chat else min(COMPLETIONS_DEFAULT_MAX_TOKENS, room)
    elif isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ApiError(400, f"'{key}' must be an integer >= 1, got {max_tokens!r}", key)
    elif max_tokens > room:
        raise ApiError(400, f"'{key}' {max_tokens} + the prompt's {len(prompt_ids)} tokens exceed this server's "
                       f"context of {served.context} tokens; ask for at most {room}", key)
    stream = _flag(body, "stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise ApiError(400, "'stream_options' must be an object such as {\"include_usage\": true}", "stream_options")
    include_usage = bool((options or {}).get("include_usage", False))
    return Generation(chat=chat, prompt_ids=prompt_ids, max_tokens=max_tokens, stream=stream,
                      include_usage=include_usage, stop=_stop(body.get("stop")),
                      return_token_ids=_flag(body, "return_token_ids"))


def _flag(body: dict, key: str) -> bool:
    value = body.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ApiError(400, f"'{key}' must be true or false, got {value!r}", key)
    return value


def _refuse_unsupported(body: dict, served: ServedModel) -> None:
    n = body.get("n")
    if n is not None and n != 1:
        raise ApiError(400, f"'n' {n!r}: this server returns one choice per request; send n = 1", "n")
    if body.get("best_of") not in (None, 1):
        raise ApiError(400, "'best_of' is not supported; leave it out", "best_of")
    if body.get("echo"):
        raise ApiError(400, "'echo' is not supported; leave it out", "echo")
    if body.get("logprobs") not in (None, False, 0) or body.get("top_logprobs") not in (None, 0):
        raise ApiError(400, "'logprobs' is not supported by specscope serve; leave it out", "logprobs")
    for key, own in (("temperature", served.temperature), ("top_p", served.top_p)):
        value = body.get(key)
        if value is None or (key == "top_p" and served.temperature == 0):  # greedy: top_p changes nothing
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ApiError(400, f"'{key}' must be a number, got {value!r}", key)
        if abs(float(value) - own) > 1e-9:
            raise ApiError(400, f"'{key}' {value:g}: this server samples with {key} {own:g} for every request "
                           f"(restart it with specscope serve --{key.replace('_', '-')} {value:g})", key)


def _completion_prompt(body: dict, tokenizer, served: ServedModel) -> list[int]:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
        prompt = prompt[0]  # a batch of one
    if isinstance(prompt, str):
        return list(tokenizer(prompt, add_special_tokens=True)["input_ids"])
    if isinstance(prompt, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
        bad = [t for t in prompt if not 0 <= t < served.vocab_size]
        if bad:
            raise ApiError(400, f"'prompt' token id {bad[0]} is outside the vocabulary (0..{served.vocab_size - 1})",
                           "prompt")
        return list(prompt)
    if isinstance(prompt, list) and prompt and all(isinstance(p, (str, list)) for p in prompt):
        raise ApiError(400, f"'prompt' holds {len(prompt)} prompts; send one request per prompt", "prompt")
    raise ApiError(400, "'prompt' must be a string or a list of token ids", "prompt")


def _chat_prompt(body: dict, tokenizer) -> list[int]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list of {\"role\", \"content\"} objects", "messages")
    turns = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise ApiError(400, f"messages[{i}]: needs a 'role' of {', '.join(ROLES)} and a 'content'", "messages")
        turns.append({"role": message["role"], "content": _text_content(message.get("content"), i)})
    if not getattr(tokenizer, "chat_template", None):
        raise ApiError(400, "this model has no chat template; use /v1/completions", "messages")
    try:
        text = tokenizer.apply_chat_template(turns, add_generation_prompt=True, tokenize=False)
    except Exception as err:  # the template's own checks (e.g. role order): the client's to fix
        raise ApiError(400, f"the chat template refused these messages: {' '.join(str(err).split())}",
                       "messages") from None
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _text_content(content, i: int) -> str:
    """A message's text: a string, or a list of {"type": "text", "text": ...} parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text"
                                         and isinstance(p.get("text"), str) for p in content):
        return "".join(p["text"] for p in content)
    raise ApiError(400, f"messages[{i}].content must be text (a string or text parts)", "messages")


def _stop(stop) -> list[str]:
    if stop is None:
        return []
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
        raise ApiError(400, "'stop' must be a non-empty string or a list of them", "stop")
    return list(stop)


# ------------------------------------------------------------------------------------------------ responses


def spec_decode_metrics(proposed: list[int], accepted: list[int], num_spec_tokens: int, level: str) -> dict | None:
    """vLLM's `metrics.speculative_decoding` of one request from its per-decode-step drafts and acceptances
    (None for plain decoding or level `none`)."""
    if level == "none" or num_spec_tokens < 1:
        return None
    steps, drafted, kept = len(accepted), sum(proposed), sum(accepted)
    histogram = [0] * (max([num_spec_tokens, *accepted]) + 1)
    for a in accepted:
        histogram[a] += 1
    out = {
        "mean_acceptance_length": 1.0 + kept / steps if steps else None,
        "draft_acceptance_rate": kept / drafted if drafted else None,
        "acceptance_histogram": histogram,
        "num_spec_steps": steps,
        "num_accepted_draft_tokens": kept,
        "num_draft_tokens": drafted,
        "num_spec_tokens": num_spec_tokens,
    }
    if level == "detailed":
        out["per_step_accepted"] = [int(a) for a in accepted]
        out["per_step_drafted"] = [int(p) for p in proposed]
    return out


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def completion_body(gen: Generation, rid: str, created: int, model: str, text: str, finish_reason: str,
                    token_ids: list[int], sd: dict | None) -> dict:
    """The whole (non-streamed) response."""
    choice = {"index": 0, "finish_reason": finish_reason}
    if gen.chat:
        choice["message"] = {"role": "assistant", "content": text}
    else:
        choice["text"], choice["logprobs"] = text, None
    if gen.return_token_ids:
        choice["token_ids"] = token_ids
    body = {"id": rid, "object": "chat.completion" if gen.chat else "text_completion", "created": created,
            "model": model, "choices": [choice], "usage": usage(len(gen.prompt_ids), len(token_ids)),
            "metrics": {"speculative_decoding": sd}}
    if gen.return_token_ids:
        body["prompt_token_ids"] = gen.prompt_ids
    return body


def chunk_body(gen: Generation, rid: str, created: int, model: str, text: str | None, finish_reason: str | None,
               token_ids: list[int] | None = None, first: bool = False) -> dict:
    """One streamed chunk: a text delta (and, on the last, its finish reason)."""
    choice: dict = {"index": 0, "finish_reason": finish_reason}
    if gen.chat:
        delta = {"role": "assistant"} if first else {}
        if text:
            delta["content"] = text
        choice["delta"] = delta
    else:
        choice["text"], choice["logprobs"] = text or "", None
    if gen.return_token_ids and token_ids is not None:
        choice["token_ids"] = token_ids
    body = {"id": rid, "object": "chat.completion.chunk" if gen.chat else "text_completion", "created": created,
            "model": model, "choices": [choice]}
    if first and gen.return_token_ids:
        body["prompt_token_ids"] = gen.prompt_ids
    return body


def usage_chunk(gen: Generation, rid: str, created: int, model: str, completion_tokens: int, sd: dict | None) -> dict:
    """The final chunk of a stream with `stream_options.include_usage`: no choices, the usage, the SD metrics."""
    return {"id": rid, "object": "chat.completion.chunk" if gen.chat else "text_completion", "created": created,
            "model": model, "choices": [], "usage": usage(len(gen.prompt_ids), completion_tokens),
            "metrics": {"speculative_decoding": sd}}
