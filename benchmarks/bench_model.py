"""Plain greedy decoding speed of specscope's model vs transformers' `generate()`, side by side.

Usage:  .venv/bin/python benchmarks/bench_model.py [--threads 2] [--repeats 3] [--new-tokens 32]

Measures, on the embedded default model (SmolLM2-135M-Instruct GGUF), same chat prompts, greedy,
same thread count, all in one process with the configurations interleaved round-robin so machine
noise hits them alike (medians over repeats):

  hf_generate_bs1   transformers' generate() on the same checkpoint (dequantised to float32)
  ours_gguf_bs1     our model on the GGUF's own Q4_1/Q8_0 blocks (CPU kernels), batch size 1
  ours_fp32_bs1     our model, weights dequantised to float32 (torch linear layers), batch size 1
  ours_gguf_bs16    16 sequences decoding together (one forward over 16 chunks per step)
  ours_fp32_bs16    the same on float32 weights (torch linear layers)

Throughput = generated tokens / wall time of the whole request (prefill + decode). Goals:
ours_gguf_bs1 >= 2x hf_generate_bs1; batch 16 >= 5x batch 1 (printed for both weight formats: the
quantised path makes batch 1 memory-light, so its batch-16 ratio is bounded by arithmetic, not bandwidth). It also checks that our
greedy tokens equal transformers' (fp32 path) and that the GGUF path agrees with them.
The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch

PROMPTS = [
    "Write a short poem about the ocean.",
    "Explain what a hash table is in two sentences.",
    "List five fruits that are red.",
    "What is the capital of Japan, and what is it famous for?",
    "Translate 'good morning, how are you?' into French.",
    "Give me a one-line Python function that reverses a string.",
    "Why is the sky blue? Answer briefly.",
    "Name three planets of the solar system.",
    "Summarise the plot of Cinderella in two sentences.",
    "What are the primary colours?",
    "Write a haiku about autumn leaves.",
    "How many legs does a spider have?",
    "Suggest a name for a friendly robot.",
    "What does CPU stand for?",
    "Describe a cat in five words.",
    "What is 12 times 12?",
]


def chat_ids(tokenizer, text: str) -> list[int]:
    ids = tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True)
    return list(ids if isinstance(ids, list) else ids["input_ids"])


def greedy_ours(model, prompts: list[list[int]], new_tokens: int) -> list[list[int]]:
    """Plain greedy decoding: prefill every prompt, then one forward per step over all sequences."""
    cache = model.new_cache(len(prompts), max(len(p) for p in prompts) + new_tokens + 1)
    slots = list(range(len(prompts)))
    out = model.forward_chunks(cache, slots, prompts, num_logits=[1] * len(prompts))
    for s, p in zip(slots, prompts):
        cache.set_length(s, len(p))
    tokens = [[int(logits[-1].argmax())] for logits in out.logits]
    for _ in range(new_tokens - 1):
        out = model.forward_chunks(cache, slots, [t[-1:] for t in tokens])
        for s, t, logits in zip(slots, tokens, out.logits):
            cache.set_length(s, cache.length(s) + 1)
            t.append(int(logits[-1].argmax()))
    return tokens


def greedy_hf(model, prompt: list[int], new_tokens: int) -> list[int]:
    ids = torch.tensor([prompt])
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                             min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
    return out[0, len(prompt):].tolist()


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from transformers import AutoModelForCausalLM

    from specscope.engine.loading import default_model_path, load_model

    gguf, tokenizer = load_model(None, quant="gguf")
    fp32, _ = load_model(None, quant="none", tokenizer=False)
    path = default_model_path()
    hf = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()
    prompts = [chat_ids(tokenizer, p) for p in PROMPTS]
    T = args.new_tokens
    print(f"# threads={args.threads} new_tokens={T} repeats={args.repeats} load={os.getloadavg()[0]:.1f} "
          f"gguf weights {gguf.weight_nbytes() / 1e6:.0f} MB ({gguf.weight_format}), fp32 {fp32.weight_nbytes() / 1e6:.0f} MB",
          file=sys.stderr)

    configs = {
        "hf_generate_bs1": lambda: [greedy_hf(hf, prompts[0], T)],
        "ours_gguf_bs1": lambda: greedy_ours(gguf, prompts[:1], T),
        "ours_fp32_bs1": lambda: greedy_ours(fp32, prompts[:1], T),
        "ours_gguf_bs16": lambda: greedy_ours(gguf, prompts, T),
        "ours_fp32_bs16": lambda: greedy_ours(fp32, prompts, T),
    }
    batch = {"ours_gguf_bs16": len(prompts), "ours_fp32_bs16": len(prompts)}
    for fn in configs.values():  # warm-up
        fn()
    seconds, outputs = {name: [] for name in configs}, {}
    for _ in range(args.repeats):
        for name, fn in configs.items():
            dt, outputs[name] = timed(fn)
            seconds[name].append(dt)
    tps = {name: batch.get(name, 1) * T / statistics.median(s) for name, s in seconds.items()}

    hf_tokens = outputs["hf_generate_bs1"][0]
    checks = {
        "fp32_equals_hf_tokens": outputs["ours_fp32_bs1"][0] == hf_tokens,
        "gguf_equals_hf_tokens": outputs["ours_gguf_bs1"][0] == hf_tokens,
        "gguf_bs16_row0_equals_bs1": outputs["ours_gguf_bs16"][0] == outputs["ours_gguf_bs1"][0],
    }
    ratios = {
        "gguf_bs1_vs_hf_generate": tps["ours_gguf_bs1"] / tps["hf_generate_bs1"],
        "fp32_bs1_vs_hf_generate": tps["ours_fp32_bs1"] / tps["hf_generate_bs1"],
        "gguf_bs16_vs_gguf_bs1": tps["ours_gguf_bs16"] / tps["ours_gguf_bs1"],
        "fp32_bs16_vs_fp32_bs1": tps["ours_fp32_bs16"] / tps["ours_fp32_bs1"],
        "gguf_bs16_vs_hf_generate": tps["ours_gguf_bs16"] / tps["hf_generate_bs1"],
    }
    print(f"{'config':<18} {'tok/s':>8} {'ms/token/seq':>13}   (median of {args.repeats})")
    for name, value in tps.items():
        print(f"{name:<18} {value:8.1f} {1000 * batch.get(name, 1) / value:13.1f}")
    for name, value in ratios.items():
        print(f"{name:<26} {value:6.2f}x")
    for name, ok in checks.items():
        print(f"{name:<26} {ok}")
    print(json.dumps({"benchmark": "model", "threads": args.threads, "new_tokens": T, "tokens_per_s": tps,
                      "ratios": ratios, "checks": checks, "load_avg": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
