"""EAGLE / EAGLE-3 / MTP heads: greedy output equals plain decoding, checkpoints round-trip, published
layouts load, bad checkpoints fail with one line, and the inference path matches the training path."""

import json

import numpy as np
import pytest
import torch

from sd_helpers import repetitive_requests, run

from specscope.engine.heads.checkpoint import load_head, random_head, save_head
from specscope.engine.heads.common import ChunkRunner, cached_attention
from specscope.engine.kv_cache import KVCache
from specscope.engine.model import tiny_config
from specscope.errors import SpecscopeError

KINDS = ("eagle", "eagle3", "mtp")


@pytest.fixture(scope="module")
def head_dirs(tmp_path_factory):
    """Random heads for the tiny model: full vocabulary and a reduced (d2t) draft vocabulary."""
    root = tmp_path_factory.mktemp("heads")
    config = tiny_config()
    dirs = {}
    for kind in KINDS:
        for vocab in (0, 64):
            dirs[kind, vocab] = save_head(random_head(kind, config, seed=3, draft_vocab=vocab), root / f"{kind}-{vocab}")
    return dirs


@pytest.fixture(scope="module")
def plain(tiny_model):
    requests = repetitive_requests(8, seed=4)
    return requests, run(tiny_model, requests, "none", k=0, batch_size=4, max_new=16)[0]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("vocab,batch_sizes", [(64, (1, 8)), (0, (8,))])
def test_greedy_output_equals_plain_decoding(tiny_model, head_dirs, plain, kind, vocab, batch_sizes):
    requests, expected = plain
    for batch_size in batch_sizes:
        out, engine = run(tiny_model, requests, kind, k=3, batch_size=batch_size, max_new=16,
                          draft=str(head_dirs[kind, vocab]))
        for rid, seq in expected.items():
            assert out[rid].output.tolist() == seq.output.tolist(), (kind, batch_size, rid)
        assert sum(s.proposed for s in engine.steps) > 0  # it really drafted


@pytest.mark.parametrize("kind", KINDS)
def test_sampling_runs_and_reports_q(tiny_model, head_dirs, kind):
    out, engine = run(tiny_model, repetitive_requests(3, seed=1), kind, k=2, batch_size=2, max_new=8,
                      draft=str(head_dirs[kind, 64]), temperature=0.8)
    assert all(len(s.output) > 0 for s in out.values())


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_gives_identical_outputs(tiny_model, tmp_path, kind):
    config = tiny_config()
    head = random_head(kind, config, seed=5, draft_vocab=64)
    path = save_head(head, tmp_path / "h")
    loaded = load_head(path, config)
    reference = head.half().float()  # the checkpoint stores fp16
    for name, value in reference.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name
    assert torch.equal(loaded.d2t, head.d2t)
    again = load_head(save_head(loaded, tmp_path / "h2"), config)
    assert all(torch.equal(again.state_dict()[k], v) for k, v in loaded.state_dict().items())
    # identical drafts from the loaded head and the fp16-rounded original
    from specscope.engine.proposers import ProposerInput, build_proposer
    from specscope.settings import RunSettings

    rng = np.random.default_rng(0)
    contexts = [rng.integers(3, 500, size=12) for _ in range(2)]
    hidden = [torch.randn(11, (3 if kind == "eagle3" else 1) * config.hidden_size, generator=torch.Generator().manual_seed(b))
              for b in range(2)]
    save_head(reference, tmp_path / "ref")
    drafts = []
    for source in (path, tmp_path / "ref"):
        proposer = build_proposer(kind, RunSettings.build(method=kind, k=3, head=str(source)), target=tiny_model)
        proposer.bind(2, 32)
        drafts.append(proposer.propose(ProposerInput([0, 1], contexts, [3, 3], hidden=hidden)).draft_ids)
    assert torch.equal(drafts[0], drafts[1])


def _published_eagle(tmp_path, config, fmt="bin"):
    """A synthetic SafeAILab-layout EAGLE-1 checkpoint: Llama config, fc with bias, no layer-0 input norm."""
    H, I, d = config.hidden_size, config.intermediate_size, config.head_dim
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g) * 0.1  # noqa: E731
    state = {
        "fc.weight": r(H, 2 * H), "fc.bias": r(H), "embed_tokens.weight": r(config.vocab_size, H),
        "layers.0.self_attn.q_proj.weight": r(config.num_heads * d, H),
        "layers.0.self_attn.k_proj.weight": r(config.num_kv_heads * d, H),
        "layers.0.self_attn.v_proj.weight": r(config.num_kv_heads * d, H),
        "layers.0.self_attn.o_proj.weight": r(H, config.num_heads * d),
        "layers.0.mlp.gate_proj.weight": r(I, H), "layers.0.mlp.up_proj.weight": r(I, H),
        "layers.0.mlp.down_proj.weight": r(H, I), "layers.0.post_attention_layernorm.weight": 1 + r(H),
    }
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": H, "intermediate_size": I,
           "num_attention_heads": config.num_heads, "num_key_value_heads": config.num_kv_heads,
           "num_hidden_layers": 1, "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "vocab_size": config.vocab_size,
           "bias": True, "torch_dtype": "float16"}
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    torch.save(state, tmp_path / "pytorch_model.bin")
    return tmp_path, cfg, state


def _published_eagle3(tmp_path, config, draft_vocab=64):
    """A synthetic EAGLE-3 checkpoint: midlayer with 2H q/k/v, hidden_norm, reduced lm_head with d2t/t2d."""
    from safetensors.torch import save_file

    H, I, d = config.hidden_size, config.intermediate_size, config.head_dim
    g = torch.Generator().manual_seed(1)
    r = lambda *s: torch.randn(*s, generator=g) * 0.1  # noqa: E731
    ids = torch.randperm(config.vocab_size, generator=g)[:draft_vocab].sort().values
    t2d = torch.zeros(config.vocab_size, dtype=torch.bool)
    t2d[ids] = True
    state = {
        "fc.weight": r(H, 3 * H), "norm.weight": 1 + r(H), "lm_head.weight": r(draft_vocab, H),
        "d2t": ids - torch.arange(draft_vocab), "t2d": t2d,
        "midlayer.self_attn.q_proj.weight": r(config.num_heads * d, 2 * H),
        "midlayer.self_attn.k_proj.weight": r(config.num_kv_heads * d, 2 * H),
        "midlayer.self_attn.v_proj.weight": r(config.num_kv_heads * d, 2 * H),
        "midlayer.self_attn.o_proj.weight": r(H, config.num_heads * d),
        "midlayer.mlp.gate_proj.weight": r(I, H), "midlayer.mlp.up_proj.weight": r(I, H),
        "midlayer.mlp.down_proj.weight": r(H, I), "midlayer.input_layernorm.weight": 1 + r(H),
        "midlayer.hidden_norm.weight": 1 + r(H), "midlayer.post_attention_layernorm.weight": 1 + r(H),
    }
    cfg = {"architectures": ["LlamaForCausalLMEagle3"], "model_type": "llama", "hidden_size": H,
           "intermediate_size": I, "num_attention_heads": config.num_heads, "num_key_value_heads": config.num_kv_heads,
           "num_hidden_layers": 1, "rms_norm_eps": 1e-6, "vocab_size": config.vocab_size,
           "draft_vocab_size": draft_vocab, "target_hidden_size": H}
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    save_file(state, str(tmp_path / "model.safetensors"))
    return tmp_path, cfg, state


def test_published_layouts_load_and_decode_exactly(tiny_model, tmp_path):
    config = tiny_config()
    eagle_dir, _, eagle_state = _published_eagle(tmp_path / "eagle", config)
    head = load_head(eagle_dir, config)
    assert head.kind == "eagle" and head.cfg.fc_bias and head.layers[0].input_layernorm is None
    assert torch.equal(head.fc.bias, eagle_state["fc.bias"])
    e3_dir, _, e3_state = _published_eagle3(tmp_path / "eagle3", config)
    head3 = load_head(e3_dir, config)
    assert head3.kind == "eagle3" and head3.cfg.draft_vocab_size == 64
    assert torch.equal(head3.d2t, e3_state["d2t"]) and torch.equal(head3.midlayer.hidden_norm.weight, e3_state["midlayer.hidden_norm.weight"])
    requests = repetitive_requests(4, seed=7)
    plain, _ = run(tiny_model, requests, "none", k=0, batch_size=4, max_new=12)
    for kind, path in (("eagle", eagle_dir), ("eagle3", e3_dir)):
        out, _ = run(tiny_model, requests, kind, k=3, batch_size=3, max_new=12, draft=str(path))
        assert all(out[r].output.tolist() == s.output.tolist() for r, s in plain.items())
    # our own saved copy of a published head reloads to the same tensors
    copy = load_head(save_head(head3, tmp_path / "copy"), config)
    assert torch.equal(copy.d2t, head3.d2t) and torch.equal(copy.t2d, head3.t2d)


def test_mismatched_and_malformed_checkpoints_fail_with_one_line(tmp_path):
    config = tiny_config()
    other = tiny_config(hidden_size=32, head_dim=8, intermediate_size=64)
    path = save_head(random_head("eagle3", other, seed=0), tmp_path / "small")
    with pytest.raises(SpecscopeError, match="hidden size 32 does not match the target's 64"):
        load_head(path, config)
    path = save_head(random_head("eagle", tiny_config(vocab_size=300), seed=0), tmp_path / "vocab")
    with pytest.raises(SpecscopeError, match="vocabulary of 300 tokens does not match the target's 512"):
        load_head(path, config)
    with pytest.raises(SpecscopeError, match="is an eagle head, not mtp"):
        load_head(path, tiny_config(vocab_size=300), kind="mtp")
    with pytest.raises(SpecscopeError, match="not a folder"):
        load_head(tmp_path / "missing", config)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    with pytest.raises(SpecscopeError, match="config.json is not valid JSON"):
        load_head(bad, config)
    (bad / "config.json").write_text(json.dumps({"hidden_size": 64}))
    with pytest.raises(SpecscopeError, match="no weights file"):
        load_head(bad, config)
    (bad / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(SpecscopeError, match="cannot read model.safetensors"):
        load_head(bad, config)
    eagle_dir, cfg, state = _published_eagle(tmp_path / "trunc", config)
    del state["layers.0.mlp.down_proj.weight"]
    torch.save(state, eagle_dir / "pytorch_model.bin")
    with pytest.raises(SpecscopeError, match="missing weights layers.0.mlp.down_proj.weight"):
        load_head(eagle_dir, config)
    cfg["intermediate_size"] = 100
    (eagle_dir / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(SpecscopeError):
        load_head(eagle_dir, config)
    for exc in (SpecscopeError,):
        try:
            load_head(path, config)
        except exc as err:
            assert "\n" not in str(err)


def test_no_shipped_head_for_an_unknown_target(tiny_model):
    from specscope.engine.proposers import build_proposer
    from specscope.settings import RunSettings

    with pytest.raises(SpecscopeError, match="no eagle3 head ships for model"):
        build_proposer("eagle3", RunSettings.build(method="eagle3", k=3), target=tiny_model)


@pytest.mark.parametrize("kind", ["eagle", "eagle3"])
def test_cached_inference_matches_training_forward(tiny_model, kind):
    """The catch-up (target-fed rows) and a draft step (own output fed back) equal the training path,
    including EAGLE-3's training-time-test attention pattern."""
    from specscope.engine.engine import proposer_features
    from specscope.engine.heads.common import aux_layer_outputs

    config = tiny_config()
    head = random_head(kind, config, seed=9)
    tokens = torch.tensor(repetitive_requests(1, seed=3)[0].prompt_token_ids[:20])
    layers = aux_layer_outputs(head.cfg.aux_layer_ids, config.num_layers) if kind == "eagle3" else ()
    cache = tiny_model.new_cache(1, len(tokens))
    feats = proposer_features(tiny_model.forward_chunks(cache, [0], [tokens], hidden_layers=layers), 0, layers)
    emb = tiny_model.embed(tokens[1:])
    T = len(tokens) - 1
    with torch.no_grad():
        train = head.train_forward(feats[:-1], emb, steps=2)
    runner = ChunkRunner(head.cfg, "cpu")
    hcache = KVCache(1, 1, T + 4, head.cfg.num_kv_heads, head.cfg.head_dim, "cpu", torch.float32)
    with torch.no_grad():
        batch = runner.pack(hcache, [0], [tokens[1:]], torch.float32)
        out, normed = head.step(feats[:-1], emb, batch.cos, batch.sin, [cached_attention(*hcache.layer(0), batch)], fed=True)
        ref = train[0]
        assert torch.allclose(normed if kind == "eagle3" else out, ref, atol=1e-4)
        # draft step: row r = T - 1 + 1 after target-fed rows 0..T-2, fed the own output of row T-2
        r = T - 1
        hcache.lengths[0] = r  # target-fed rows 0..r-1 stay; row r is the draft
        batch = runner.pack(hcache, [0], [tokens[r + 1 : r + 2]], torch.float32)
        out2, normed2 = head.step(out[r - 1 : r], emb[r : r + 1], batch.cos, batch.sin,
                                  [cached_attention(*hcache.layer(0), batch)], fed=False)
        step1 = train[1][r]
        assert torch.allclose((normed2 if kind == "eagle3" else out2)[0], step1, atol=1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_trace_and_profile_feed_hidden_states(tiny_model, head_dirs, plain, kind):
    from specscope.engine.profiling import profile_proposer
    from specscope.engine.proposers import build_proposer
    from specscope.engine.tracing import collect_traces
    from specscope.settings import RunSettings

    requests, expected = plain
    proposer = build_proposer(kind, RunSettings.build(method=kind, k=4, head=str(head_dirs[kind, 64])), target=tiny_model)
    traced = list(collect_traces(tiny_model, {kind: proposer}, requests[:3], k_max=4, batch_size=3,
                                 max_new_tokens=16, stop_token_ids=(2,)))
    for seq, values, _ in traced:
        assert seq.output.tolist() == expected[seq.request.id].output.tolist()
        assert len(values[kind]) == len(seq.output) and values[kind].min() >= 1
    rows = list(profile_proposer(proposer, kind, 512, "cpu", [2], [2], [8], reps=1))
    assert [r["step_kind"] for r in rows] == [f"catch_up:{kind}", f"draft:{kind}"]
    assert rows[0]["num_batched_tokens"] == 2 * 8 and rows[0]["seconds"] > 0  # B sequences x C context tokens


def test_shipped_heads_decode_exactly_on_the_default_model(default_model_and_tokenizer):
    from specscope.engine.heads.checkpoint import bundled_head
    from specscope.engine.scheduler import Request

    model, tokenizer = default_model_and_tokenizer
    prompts = ["The capital of France is", "def fibonacci(n):\n    "]
    requests = [Request(f"p{i}", tokenizer(p)["input_ids"]) for i, p in enumerate(prompts)]
    plain, _ = run(model, requests, "none", k=0, batch_size=2, max_new=16, stop=())
    for kind in KINDS:
        assert bundled_head(kind, model.config) is not None, kind
        for batch_size in (1, 2) if kind == "eagle3" else (2,):
            out, engine = run(model, requests, kind, k=3, batch_size=batch_size, max_new=16, stop=())
            for rid, seq in plain.items():
                assert out[rid].output.tolist() == seq.output.tolist(), (kind, batch_size)
            assert sum(s.accepted for s in engine.steps) > 0, kind  # trained heads get drafts accepted


def test_training_learns_and_resumes_exactly(tiny_model, tmp_path):
    from specscope.engine.heads.data import generate_continuations, target_features
    from specscope.engine.heads.training import TrainSettings, train_head

    requests = repetitive_requests(4, seed=11)
    seqs = generate_continuations(tiny_model, requests, 4, 12, (2,))
    data = target_features(tiny_model, [s for s, _ in seqs], [n for _, n in seqs])
    assert data.num_tokens == sum(len(s) for s, _ in seqs) and data.aux[0].shape[1] == 3 * 64
    settings = TrainSettings(kind="eagle3", epochs=2, draft_vocab=128, ttt_steps=2, checkpoint_every=1)
    full, summary = train_head(tiny_model, data, settings)
    assert summary["steps"] == 4 and summary["draft_vocab"] == 128

    class Stop(Exception):
        pass

    def interrupt(step, total, metrics):
        if step == 3:
            raise Stop

    state = tmp_path / "state.pt"
    with pytest.raises(Stop):
        train_head(tiny_model, data, settings, state_path=state, progress=interrupt)
    resumed, _ = train_head(tiny_model, data, settings, state_path=state)
    for name, value in full.state_dict().items():
        assert torch.allclose(resumed.state_dict()[name], value, atol=1e-6), name
    path = save_head(resumed, tmp_path / "head")
    assert load_head(path, tiny_model.config).cfg.draft_vocab_size == 128


@pytest.mark.parametrize("kind", KINDS)
def test_adaptive_over_a_head_equals_plain_decoding(tiny_model, head_dirs, plain, kind):
    """`--k adaptive --method ngram,<head>`: the head is fed every step, also where ngram (or no draft) was chosen."""
    from specscope.costs.model import CostModel, LinearCost
    from specscope.engine.drafting import Drafter
    from specscope.engine.engine import Engine
    from specscope.policy.adaptive import Adaptive
    from specscope.policy.confidence import ConfidenceParams
    from specscope.engine.proposers import build_proposer
    from specscope.settings import AdaptiveSettings, RunSettings

    requests, expected = plain
    costs = CostModel("cheap", LinearCost(1.0, 0.01, 0.0), 0.1,
                      {"ngram": LinearCost(0.0, 0.0, 0.0), kind: LinearCost(0.05, 0.01, 0.0)})
    settings = RunSettings.build(method=f"ngram,{kind}", ngram_min=2, head=str(head_dirs[kind, 64]), batch_size=4,
                                 max_new_tokens=16, adaptive=AdaptiveSettings(cost_model="cheap", k_cap=4))
    subs = {name: build_proposer(name, settings, target=tiny_model) for name in ("ngram", kind)}
    drafter = Drafter(subs, Adaptive(tuple(subs), costs, confidence=ConfidenceParams()))
    engine = Engine(tiny_model, drafter, settings, stop_token_ids=(2,))
    out = {s.request.id: s for s in engine.generate(requests)}
    for rid, seq in expected.items():
        assert out[rid].output.tolist() == seq.output.tolist(), (kind, rid)
    head = subs[kind]
    if hasattr(head, "filled"):  # the head's cache kept up with every sequence it saw
        assert max(head.filled) > 0


@pytest.mark.parametrize("kind", ("eagle", "eagle3"))
def test_a_row_not_drafting_keeps_the_heads_cache_in_step(tiny_model, head_dirs, plain, kind):
    """A row asked for no drafts gets no vocabulary projection, but the head still reads its features: its later
    drafts equal those of a head that drafted for it every step (and whose drafts were thrown away)."""
    from specscope.engine.engine import Engine
    from specscope.engine.proposers import build_proposer
    from specscope.engine.proposers.base import Proposal, Proposer
    from specscope.settings import RunSettings

    class EveryOtherStep(Proposer):
        """Drafts for row i at step t only when t + i is odd; `skip`: asks the head for no drafts elsewhere,
        otherwise asks for them and drops them. Records what the head drafted for the rows that draft."""

        needs_hidden = True

        def __init__(self, head, skip):
            super().__init__(head.settings)
            self.head, self.skip, self.t, self.seen = head, skip, 0, []
            self.hidden_layers = getattr(head, "hidden_layers", ())

        def bind(self, num_slots, max_len):
            self.head.bind(num_slots, max_len)

        def reset(self, slot):
            self.head.reset(slot)

        def propose(self, batch):
            self.t += 1
            on = [(self.t + i) % 2 == 1 and m > 0 for i, m in enumerate(batch.max_draft)]
            asked = [m if (o or not self.skip) else 0 for m, o in zip(batch.max_draft, on)]
            sub = self.head.propose(type(batch)(batch.slots, batch.contexts, asked, batch.generator, batch.hidden))
            drafts = [sub.draft_ids[i, : int(sub.num_draft[i])].numpy() if o else np.zeros(0, np.int64)
                      for i, o in enumerate(on)]
            self.seen.append([d.tolist() for d in drafts])
            return Proposal.from_lists(drafts)

    requests, expected = plain
    runs = []
    for skip in (True, False):
        settings = RunSettings.build(method=kind, k=3, head=str(head_dirs[kind, 64]), batch_size=4, max_new_tokens=16)
        head = build_proposer(kind, settings, target=tiny_model)
        wrapper = EveryOtherStep(head, skip)
        engine = Engine(tiny_model, wrapper, settings, stop_token_ids=(2,))
        out = {s.request.id: s for s in engine.generate(requests)}
        assert all(out[rid].output.tolist() == seq.output.tolist() for rid, seq in expected.items())
        runs.append(wrapper.seen)
    assert runs[0] == runs[1]
    assert sum(len(d) for step in runs[0] for d in step) > 0  # it really drafted
