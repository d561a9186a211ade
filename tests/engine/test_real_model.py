"""The engine on the real default model (SmolLM2-135M-Instruct): greedy SD equals plain greedy decoding."""

import pytest

from specscope.engine.proposers import build_proposer
from specscope.engine.tracing import collect_traces
from specscope.settings import RunSettings
from specscope.study.engine_backend import build_requests, stop_token_ids
from specscope.study.prompts import run_prompts

from sd_helpers import run

pytestmark = pytest.mark.slow
MAX_NEW = 16


@pytest.fixture(scope="module")
def setup(default_model_and_tokenizer):
    model, tokenizer = default_model_and_tokenizer
    prompts = run_prompts(RunSettings(workload="code-edit", num_prompts=3))
    requests = build_requests(prompts, tokenizer, None, MAX_NEW)
    assert len({len(r.prompt_token_ids) for r in requests}) == 3  # different prompt lengths in one batch
    stop = stop_token_ids(model, tokenizer)
    plain, _ = run(model, requests, "none", 0, 3, max_new=MAX_NEW, stop=stop)
    return model, requests, stop, plain


@pytest.mark.parametrize("method,k,draft", [("ngram", 3, None), ("draft", 2, "self:20")])
def test_greedy_sd_equals_plain_on_default_model(setup, method, k, draft):
    model, requests, stop, plain = setup
    out, engine = run(model, requests, method, k, 3, draft, max_new=MAX_NEW, stop=stop)
    for rid, seq in plain.items():
        assert out[rid].output.tolist() == seq.output.tolist(), rid
    assert sum(s.proposed for s in engine.steps) > 0


def test_trace_output_equals_plain_on_default_model(setup):
    model, requests, stop, plain = setup
    proposer = build_proposer("ngram", RunSettings.build(method="ngram", k=8))
    traced = list(collect_traces(model, {"ngram": proposer}, requests[:2], 8, 2, MAX_NEW, stop))
    for seq, acc, _ in traced:
        assert seq.output.tolist() == plain[seq.request.id].output.tolist()
        assert acc["ngram"][0] == 1 and acc["ngram"].min() >= 1
