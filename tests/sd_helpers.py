"""Helpers shared by the engine tests: repetitive prompts for the tiny model and a one-call engine run."""

import numpy as np

from specscope.engine.engine import Engine
from specscope.engine.proposers import build_proposer
from specscope.engine.scheduler import Request
from specscope.settings import RunSettings

MAX_NEW = 24


def repetitive_requests(n=16, seed=0):
    """Prompts that repeat a short random phrase, cut at different lengths, so n-gram lookup finds matches."""
    rng = np.random.default_rng(seed)
    requests = []
    for i in range(n):
        phrase = rng.integers(3, 512, size=rng.integers(3, 10)).tolist()
        requests.append(Request(f"r{i}", (phrase * 8)[: int(rng.integers(6, 50))]))
    return requests


def run(model, requests, method="none", k=0, batch_size=4, draft=None, max_new=MAX_NEW, stop=(2,), **cfg):
    head = method in ("eagle", "eagle3", "mtp")  # `draft`: the draft model, or the head folder of a head method
    settings = RunSettings.build(method=method, k=k, draft_model=None if head else draft, head=draft if head else None,
                                 batch_size=batch_size, max_new_tokens=max_new, **cfg)
    engine = Engine(model, build_proposer(method, settings, target=model), settings, stop_token_ids=stop)
    return {s.request.id: s for s in engine.generate(requests)}, engine




def save_tiny_model_folder(path, seed=0, word_seed=1):
    """A tiny random model as a Hugging Face folder with a word-level tokenizer ('w<i>' words).

    Different `word_seed`s give tokenizers that map different strings to the same ids.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from specscope.engine.loading import save_hf_folder
    from specscope.engine.model import random_model, tiny_config

    config = tiny_config()
    save_hf_folder(random_model(config, seed=seed), path)
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for i in range(3, config.vocab_size):
        vocab[f"w{(i * word_seed) % 100003}"] = i
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>").save_pretrained(path)
    return path


def repetitive_prompt_file(path, n=6, seed=0, long_one=False):
    """A JSONL file of word prompts that repeat a phrase (what `--workload FILE` reads)."""
    import json

    rng = np.random.default_rng(seed)
    with open(path, "w") as fh:
        for i in range(n):
            phrase = " ".join(f"w{t}" for t in rng.integers(3, 512, size=rng.integers(3, 8)))
            text = " ".join([phrase] * int(rng.integers(2, 6)))
            fh.write(json.dumps({"id": f"p{i}", "prompt": text}) + "\n")
        if long_one:
            fh.write(json.dumps({"id": "too-long", "prompt": " ".join(["w7"] * 1100)}) + "\n")
    return path
