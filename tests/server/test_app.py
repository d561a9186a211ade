"""`specscope serve`'s app over the tiny model: greedy outputs equal the engine's, streaming equals non-streaming,
SD metrics in vLLM's shape, concurrent requests batch together, bad requests get a 4xx with a JSON error."""

import json
import threading

import pytest

from specscope.engine.scheduler import Request

from server_helpers import TINY, tiny_engine

PROMPT = [5, 6, 7, 8, 5, 6, 7, 8, 5, 6, 7]  # repetitive: the n-gram finds matches


def engine_output(model, prompt, max_new):
    """What the engine itself generates for this prompt (greedy, the same ngram k = 3)."""
    engine = tiny_engine(model)
    (seq,) = list(engine.generate([Request("x", prompt, max_new)]))
    return [int(t) for t in seq.output], list(seq.proposed), list(seq.accepted)


def stream_events(response):
    events = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            events.append(line[len("data: "):])
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


def test_health_models_version(tiny_app):
    assert tiny_app.get("/health").json() == {"status": "ok"}
    models = tiny_app.get("/v1/models").json()
    assert [m["id"] for m in models["data"]] == [TINY] and models["data"][0]["max_model_len"] == 256
    version = tiny_app.get("/version").json()
    assert version["engine"] == "specscope" and version["speculative"]["num_spec_tokens"] == 3


def test_completion_equals_the_engine_and_reports_vllm_shaped_metrics(tiny_app, tiny_model):
    expected, proposed, accepted = engine_output(tiny_model, PROMPT, 12)
    body = tiny_app.post("/v1/completions", json={"model": TINY, "prompt": PROMPT, "max_tokens": 12,
                                                    "temperature": 0, "return_token_ids": True}).json()
    choice = body["choices"][0]
    assert choice["token_ids"] == expected and body["prompt_token_ids"] == PROMPT
    assert choice["text"] == tiny_app.tokenizer.decode(expected)
    assert choice["finish_reason"] in ("length", "stop")
    assert body["usage"] == {"prompt_tokens": len(PROMPT), "completion_tokens": len(expected),
                             "total_tokens": len(PROMPT) + len(expected)}
    sd = body["metrics"]["speculative_decoding"]
    assert sd["per_step_drafted"] == proposed and sd["per_step_accepted"] == accepted
    assert sd["num_spec_steps"] == len(accepted) == sum(sd["acceptance_histogram"])
    assert sd["num_accepted_draft_tokens"] == sum(accepted) and sd["num_draft_tokens"] == sum(proposed)
    assert sd["num_spec_tokens"] == 3 and len(sd["acceptance_histogram"]) == 4
    assert sd["mean_acceptance_length"] == pytest.approx(1 + sum(accepted) / len(accepted))
    assert sum(a + 1 for a in accepted) + 1 == len(expected)  # every decode step is in the arrays
    assert sum(accepted) > 0


def test_stream_equals_the_whole_response(tiny_app):
    request = {"model": TINY, "prompt": PROMPT, "max_tokens": 12, "return_token_ids": True}
    whole = tiny_app.post("/v1/completions", json=request).json()
    with tiny_app.stream("POST", "/v1/completions",
                         json={**request, "stream": True, "stream_options": {"include_usage": True}}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        chunks = stream_events(response)
    text = "".join(c["choices"][0]["text"] for c in chunks if c["choices"])
    ids = [t for c in chunks if c["choices"] for t in c["choices"][0].get("token_ids", [])]
    assert text == whole["choices"][0]["text"] and ids == whole["choices"][0]["token_ids"]
    assert chunks[0]["prompt_token_ids"] == PROMPT
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == whole["choices"][0]["finish_reason"]
    final = chunks[-1]
    assert final["choices"] == [] and final["usage"] == whole["usage"]
    assert final["metrics"] == whole["metrics"]  # the SD metrics ride the final usage chunk, once


def test_chat_uses_the_chat_template(tiny_app):
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "a b a b a"}]
    body = tiny_app.post("/v1/chat/completions", json={"model": TINY, "messages": messages, "max_tokens": 5,
                                                         "return_token_ids": True}).json()
    tok = tiny_app.tokenizer
    rendered = tok(tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False),
                   add_special_tokens=False)["input_ids"]
    assert body["prompt_token_ids"] == rendered
    assert body["object"] == "chat.completion" and body["choices"][0]["message"]["role"] == "assistant"
    with tiny_app.stream("POST", "/v1/chat/completions",
                         json={"model": TINY, "messages": messages, "max_tokens": 5, "stream": True}) as response:
        chunks = stream_events(response)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == body["choices"][0]["message"]["content"]


def test_concurrent_requests_share_the_batch_and_match_sequential(tiny_app, tiny_model):
    prompts = [PROMPT[i:] + [9, 10, 11][: i % 3] for i in range(6)]
    expected = [engine_output(tiny_model, p, 10)[0] for p in prompts]
    got = [None] * len(prompts)

    def send(i):
        got[i] = tiny_app.post("/v1/completions", json={"model": TINY, "prompt": prompts[i], "max_tokens": 10,
                                                          "return_token_ids": True}).json()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [g["choices"][0]["token_ids"] for g in got] == expected
    metrics = tiny_app.get("/metrics").text
    assert 'specscope:request_success_total{finished_reason="length",model_name="tiny"}' in metrics or \
        'specscope:request_success_total{finished_reason="stop",model_name="tiny"}' in metrics


def test_stop_string_ends_the_output_before_it(tiny_app):
    whole = tiny_app.post("/v1/completions", json={"model": TINY, "prompt": PROMPT, "max_tokens": 12}).json()
    words = whole["choices"][0]["text"].split()
    stop = words[3]
    cut = tiny_app.post("/v1/completions", json={"model": TINY, "prompt": PROMPT, "max_tokens": 12,
                                                   "stop": [stop]}).json()
    text = cut["choices"][0]["text"]
    assert stop not in text and whole["choices"][0]["text"].startswith(text)
    assert cut["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("body,status,param", [
    ({"model": "other", "prompt": "a"}, 404, "model"),
    ({"prompt": "a"}, 400, "model"),
    ({"model": TINY, "prompt": "a", "n": 2}, 400, "n"),
    ({"model": TINY, "prompt": "a", "temperature": 0.7}, 400, "temperature"),
    ({"model": TINY, "prompt": "a", "max_tokens": 0}, 400, "max_tokens"),
    ({"model": TINY, "prompt": "a", "max_tokens": 10_000}, 400, "max_tokens"),
    ({"model": TINY, "prompt": ["a", "b"]}, 400, "prompt"),
    ({"model": TINY, "prompt": [1, 2, 99999]}, 400, "prompt"),
    ({"model": TINY, "prompt": " ".join(["w"] * 300)}, 400, "prompt"),
    ({"model": TINY, "prompt": "a", "logprobs": 1}, 400, "logprobs"),
    ({"model": TINY, "prompt": "a", "stream": "yes"}, 400, "stream"),
    ({"model": TINY, "prompt": "a", "stop": [3]}, 400, "stop"),
])
def test_bad_requests_get_a_4xx_json_error(tiny_app, body, status, param):
    response = tiny_app.post("/v1/completions", json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == status and error["param"] == param and error["message"]


def test_bad_chat_messages_and_malformed_json(tiny_app):
    for messages in ([], [{"role": "robot", "content": "x"}], [{"role": "user", "content": 3}]):
        response = tiny_app.post("/v1/chat/completions", json={"model": TINY, "messages": messages})
        assert response.status_code == 400 and response.json()["error"]["param"] == "messages"
    response = tiny_app.post("/v1/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]["message"]
    assert tiny_app.post("/v1/completions", json=[1, 2]).status_code == 400


def test_a_full_queue_answers_429_and_a_stopped_engine_503():
    from specscope.server.app import Service
    from specscope.server.protocol import ApiError, Generation, ServedModel

    class Loop:
        alive, num_waiting = True, 5

    served = ServedModel(name=TINY, max_model_len=64, lookahead=4, vocab_size=512)
    gen = Generation(chat=False, prompt_ids=[1, 2], max_tokens=2)
    with pytest.raises(ApiError) as err:
        Service(Loop(), None, served, None, max_waiting=5).submit(gen)
    assert err.value.status == 429 and err.value.body()["error"]["type"] == "RateLimitError"
    Loop.alive = False
    with pytest.raises(ApiError) as err:
        Service(Loop(), None, served, None, max_waiting=50).submit(gen)
    assert err.value.status == 503


def test_plain_server_reports_no_sd_metrics(tiny_model):
    from fastapi.testclient import TestClient

    from server_helpers import tiny_service

    app, _, _, _ = tiny_service(tiny_model, method="none", k=0)
    with TestClient(app) as client:
        body = client.post("/v1/completions", json={"model": TINY, "prompt": PROMPT, "max_tokens": 4}).json()
        assert body["metrics"] == {"speculative_decoding": None} and body["usage"]["completion_tokens"] == 4


def test_a_client_that_disconnects_frees_its_sequence(tiny_server):
    import time

    import httpx

    url, loop = tiny_server
    body = {"model": TINY, "prompt": PROMPT, "max_tokens": 200, "stream": True}
    with httpx.Client(trust_env=False) as client:
        with client.stream("POST", url + "/completions", json=body) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    break  # one event, then hang up
        deadline = time.time() + 30
        while time.time() < deadline:
            metrics = client.get(url.removesuffix("/v1") + "/metrics").text
            if 'finished_reason="abort"' in metrics:
                break
            time.sleep(0.05)
    assert 'specscope:request_success_total{finished_reason="abort",model_name="tiny"} 1.0' in metrics
    assert loop.num_running == 0 and loop.engine.idle
