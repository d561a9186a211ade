"""Issue 24, case by case, through the real entry point: every bad input gets one line and exit 2 (never a
traceback), nothing that is not ours is overwritten, nothing is left behind.

Case 7 (two sweeps into one folder) is in tests/cli/test_sweep.py and tests/study/sweep/test_lock.py; the
fuzzed corpus of traces, profiles and cost models in tests/formats/test_fuzz.py.
"""

import json
import os
import re
from pathlib import Path

import pytest

from cli_helpers import main
from sd_helpers import repetitive_prompt_file, save_tiny_model_folder

from specscope.costs.presets import PRESET_DIR

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_TRACE = ROOT / "benchmarks" / "traces" / "chat.jsonl"
CPU_PRESET = PRESET_DIR / "smollm2-135m-cpu.toml"
PROFILE = ("step_kind,num_batched_tokens,num_kv_tokens,num_draft_tokens,seconds\n"
           "verify,1,64,0,0.01\nverify,4,64,0,0.015\nverify,8,256,0,0.03\nverify,16,256,0,0.05\noverhead,0,0,0,0.001\n")


def one_line_error(result, *needles):
    """Exit 2, exactly one `specscope: error:` line holding every needle, no traceback."""
    assert result.traceback is None, result.traceback
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("specscope: error: "), result.stderr
    for needle in needles:
        assert re.search(needle, lines[0]), (needle, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    """The first requests of a shipped trace (native, k_max 20, n-gram settings in its header)."""
    path = tmp_path_factory.mktemp("trace") / "t.jsonl"
    path.write_text("".join(SHIPPED_TRACE.read_text().splitlines(keepends=True)[:4]))
    return path


def simulate(trace, *extra):
    return ["simulate", trace, "--cost-model", CPU_PRESET, "--batch-sizes", "1", "4", "--policies", "fixed-1",
            "oracle", *extra]


def listing(folder):
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*"))


# 1. Bytes that are not UTF-8 text: one line naming the file, the line and the byte, for every reader.
@pytest.mark.parametrize("encode", [lambda t: t.encode("utf-16"), lambda t: t.encode("latin-1", "replace")[:200]
                                    + b"\xe9" + t.encode()[200:], lambda t: b"\x00\x01\xff" + t.encode()])
def test_1_non_utf8_trace_profile_cost_model_and_study_files(tmp_path, trace, encode):
    bad_trace = tmp_path / "t.jsonl"
    bad_trace.write_bytes(encode(trace.read_text()))
    one_line_error(main(*simulate(bad_trace, "-o", tmp_path / "o.csv")), r"t\.jsonl(:\d+)?: (not UTF-8|the file is "
                   r"UTF-16|a NUL byte)")
    profile = tmp_path / "p.csv"
    profile.write_bytes(encode(PROFILE))
    one_line_error(main("fit-cost", profile, "-o", tmp_path / "c.toml"), r"p\.csv")
    cost = tmp_path / "c.toml"
    cost.write_bytes(encode(CPU_PRESET.read_text()))
    one_line_error(main(*simulate(trace, "--cost-model", cost)), r"c\.toml")
    assert listing(tmp_path) == ["c.toml", "p.csv", "t.jsonl"]


def test_1_non_utf8_files_in_a_study_folder(tmp_path, trace):
    study = tmp_path / "study"
    (study / "traces").mkdir(parents=True)
    (study / "traces" / "chat.jsonl").write_bytes(trace.read_bytes()[:300] + b"\xff" + trace.read_bytes()[300:])
    one_line_error(main("report", study), r"traces/chat\.jsonl:\d+: not UTF-8 text \(byte 0xff at column \d+\)")
    (study / "traces" / "chat.jsonl").write_bytes(trace.read_bytes())
    cell = study / "runs" / "c"
    cell.mkdir(parents=True)
    (cell / "summary.json").write_text(json.dumps({"method": "none", "batch_size": 1, "throughput_tok_s": 1.0}))
    (cell / "requests.jsonl").write_bytes('{"id": "1", "output_token_ids": [1]}\n{"id": "é"}\n'.encode("latin-1"))
    one_line_error(main("report", study), r"requests\.jsonl:2: not UTF-8 text")
    assert not (study / "report.html").exists()


# 2. A negative seed.
def test_2_simulate_seed_minus_one(tmp_path, trace):
    one_line_error(main(*simulate(trace, "--seed", "-1", "-o", tmp_path / "o.csv")), r"--seed -1: must be an "
                   r"integer >= 0")
    assert listing(tmp_path) == []


# 3. Cost models that would divide by zero.
@pytest.mark.parametrize("mode", ["serve", "paper"])
@pytest.mark.parametrize("value, needle", [("0.0", r"the cheapest step .* takes 0 s; a step takes time"),
                                           ("1e308", r"c_fixed = 1e\+308 is more than 1e\+06 seconds")])
def test_3_zero_and_huge_coefficients(tmp_path, trace, mode, value, needle):
    text = re.sub(r"(c_fixed|c_tok|c_kv|per_step) = [0-9.e+-]+", rf"\1 = {value}", CPU_PRESET.read_text())
    cost = tmp_path / "c.toml"
    cost.write_text(text)
    one_line_error(main(*simulate(trace, "--cost-model", cost, "--mode", mode, "-o", tmp_path / "o.csv")), needle)
    assert listing(tmp_path) == ["c.toml"]


# 4. Denormal seconds in a profile.
def test_4_fit_cost_on_denormal_seconds(tmp_path):
    profile = tmp_path / "p.csv"
    profile.write_text(re.sub(r"0\.0\d+\n", "1e-320\n", PROFILE))
    one_line_error(main("fit-cost", profile, "-o", tmp_path / "c.toml"),
                   r"p\.csv:2: seconds = 1e-320 must be a positive duration, from 1e-09 to 1e\+06 seconds")
    assert listing(tmp_path) == ["p.csv"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {"model": save_tiny_model_folder(root / "model"),
            "prompts": repetitive_prompt_file(root / "prompts.jsonl", n=4),
            "too-long": repetitive_prompt_file(root / "too-long.jsonl", n=0, long_one=True)}


def run(tiny, out, *extra, prompts="prompts"):
    return main("run", "--model", tiny["model"], "--workload", tiny[prompts], "--max-new-tokens", "4", "-o", out,
                *extra)


# 5. Temperatures that are not numbers, on the command line and in a sweep config.
@pytest.mark.parametrize("value", ["nan", "inf", "-1.0"])
def test_5_run_temperature_nan_inf_leaves_no_folder(tiny, tmp_path, value):
    one_line_error(run(tiny, tmp_path / "out", "--temperature", value), rf"--temperature {value}: must be a finite "
                   r"number >= 0")
    assert not (tmp_path / "out").exists()


def test_5_sweep_temperature_nan_fails_the_dry_run(tiny, tmp_path):
    config = tmp_path / "s.toml"
    config.write_text(f'model = "{tiny["model"]}"\nworkloads = ["{tiny["prompts"]}"]\nmethods = ["none"]\n'
                      "batch_sizes = [1]\nnum_prompts = 2\ntemperature = nan\n")
    one_line_error(main("sweep", config, "-o", tmp_path / "study", "--dry-run"), r"s\.toml: temperature: nan must be "
                   r"a finite number >= 0")
    assert not (tmp_path / "study").exists()


# 6. Output paths: through a regular file, a device or FIFO, a link to one — refused, untouched.
def test_6_output_through_a_regular_file(tiny, tmp_path, trace):
    existing = tmp_path / "existing.jsonl"
    existing.write_text("mine")
    (tmp_path / "p.csv").write_text(PROFILE)
    for args in (simulate(trace, "-o", existing / "out.csv"), ["fit-cost", tmp_path / "p.csv", "-o", existing / "c.toml"],
                 ["report", tmp_path, "-o", existing / "r.html"]):
        one_line_error(main(*args), r"existing\.jsonl is a file, not a folder")
    one_line_error(run(tiny, existing / "out"), r"existing\.jsonl is a file, not a folder")
    assert existing.read_text() == "mine" and listing(tmp_path) == ["existing.jsonl", "p.csv"]


def test_6_output_naming_a_fifo_or_a_link_to_one(tmp_path, trace):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link"
    link.symlink_to(fifo)
    for target in (fifo, link):
        one_line_error(main(*simulate(trace, "-o", target)), r"is a device or other special file.* not a regular file")
    assert fifo.is_fifo() and link.is_symlink() and listing(tmp_path) == ["fifo", "link"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_6_output_naming_a_device_is_refused_before_any_work(tmp_path, trace, monkeypatch):
    # The writer must never be reached: if the check regressed, replacing the device would fail this test first.
    import specscope.formats.files as files

    def must_not_write(*args, **kwargs):
        raise AssertionError("the writer was reached")

    monkeypatch.setattr(files.tempfile, "mkstemp", must_not_write)
    link = tmp_path / "full"
    link.symlink_to("/dev/full")
    for target in ("/dev/full", link):
        one_line_error(main(*simulate(trace, "-o", target)), r"is a device or other special file")
    assert Path("/dev/full").is_char_device()


# 8. Nonsense that used to pass: acc_len past k_max or the end, n-gram lengths out of order or not numbers.
@pytest.mark.parametrize("edit, needle", [
    (lambda h, r: (h.pop("k_max"), r["acc_len"]["ngram"].__setitem__(0, 10**9)), r"\[0\] = 1000000000: only"),
    (lambda h, r: r["acc_len"]["draft"].__setitem__(-1, 2), r"cannot commit past the end of the output"),
    (lambda h, r: h.update(ngram_max=2), r"'ngram_min' = 3 is larger than 'ngram_max' = 2"),
    (lambda h, r: h.update(ngram_min="3"), r"'ngram_min' = '3': n-gram lengths are integers >= 1"),
    (lambda h, r: h.update(ngram_min=0), r"'ngram_min' = 0: n-gram lengths are integers >= 1"),
])
def test_8_nonsense_traces_are_refused(tmp_path, trace, edit, needle):
    lines = [json.loads(line) for line in trace.read_text().splitlines()]
    edit(lines[0], lines[1])
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(line) + "\n" for line in lines))
    one_line_error(main(*simulate(bad, "-o", tmp_path / "o.csv")), needle)
    assert listing(tmp_path) == ["bad.jsonl"]


def test_8_specdecode_bench_acc_len_of_a_billion(tmp_path):
    path = tmp_path / "sdb.jsonl"
    acc = [1, 2, 1, 1, 1]
    path.write_text(json.dumps({"prompt_token_ids": [1, 2], "generated_token_ids": [3] * 5,
                                "acc_eagle": {"acc_len": acc}, "acc_ngram": {"acc_len": [10**9] + acc[1:]}}) + "\n")
    one_line_error(main("simulate", path, "--cost-model", "llama3.1-8b-h100", "--mode", "paper"),
                   r"'acc_ngram\.acc_len'\[0\] = 1000000000: only 5 output")


# 9. A sweep's --dry-run checks what a real run would: cost models, draft models, devices.
SWEEP = """model = "{model}"
workloads = ["{prompts}"]
methods = ["none", "draft"]
batch_sizes = [1]
num_prompts = 2
max_new_tokens = 4
draft_model = "self:1"

[trace]
num_prompts = 2
k_max = 4

[simulate]
policies = ["fixed-1", "oracle"]
batch_sizes = [1]
cost_model = "smollm2-135m-cpu"
"""


@pytest.mark.parametrize("old, new, needle", [
    ('cost_model = "smollm2-135m-cpu"', 'cost_model = "nope"', r"simulate\.cost_model: Unknown cost model 'nope'"),
    ('cost_model = "smollm2-135m-cpu"', 'cost_model = "llama3.1-8b-h100"',
     r"simulate\.cost_model: cost model 'llama3\.1-8b-h100' has no draft cost for proposer 'draft'"),
    ('draft_model = "self:1"', 'draft_model = "self:999"',
     r'draft_model: "self:999": a self-draft takes L of the target\'s 3 layers, 1 <= L < 3'),
    ('draft_model = "self:1"', 'draft_model = "no/such/model.gguf"', r"draft_model: model path 'no/such/model\.gguf' "
     "does not exist"),
    ('num_prompts = 2\nmax', 'num_prompts = 2\ndevice = "tpu"\nmax', r"device 'tpu' is not supported"),
    ('num_prompts = 2\nmax', 'num_prompts = 5\nmax', r"num_prompts: 5 for workload .*only 4 prompt\(s\) are available"),
    ('methods = ["none", "draft"]', 'methods = ["none", "draft", "eagle"]', r"methods: 'eagle': no eagle head ships"),
])
def test_9_sweep_dry_run_checks_everything_a_run_would(tiny, tmp_path, old, new, needle):
    config = tmp_path / "s.toml"
    text = SWEEP.format(model=tiny["model"], prompts=tiny["prompts"])
    assert old in text
    config.write_text(text.replace(old, new))
    for extra in (["--dry-run"], []):
        one_line_error(main("sweep", config, "-o", tmp_path / "study", *extra), r"s\.toml: ", needle)
    assert not (tmp_path / "study").exists()


def test_9_the_same_sweep_with_good_values_passes_its_dry_run(tiny, tmp_path):
    config = tmp_path / "s.toml"
    config.write_text(SWEEP.format(model=tiny["model"], prompts=tiny["prompts"]))
    result = main("sweep", config, "-o", tmp_path / "study", "--dry-run")
    assert result.returncode == 0, result.stderr
    plan = result.stdout.splitlines()[0]  # one line, however long the paths (case 12: no wrapping mid-sentence)
    assert plan.startswith(f"sweep {config} -> ") and plan.endswith("2 measured cells (0 done), 1 traces (0 done)")
    assert not (tmp_path / "study").exists()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_9_sweep_on_cuda_without_cuda_fails_the_dry_run(tiny, tmp_path):
    config = tmp_path / "s.toml"
    config.write_text(SWEEP.format(model=tiny["model"], prompts=tiny["prompts"]).replace(
        "num_prompts = 2\nmax", 'num_prompts = 2\ndevice = "cuda"\nmax'))
    one_line_error(main("sweep", config, "-o", tmp_path / "study", "--dry-run"),
                   r'device: "cuda": no CUDA device is available to torch here; use device = "cpu"')


# 10. k has an upper bound (MAX_K = 64), and nothing is left behind.
@pytest.mark.parametrize("args", [["--method", "ngram", "--k", "100000"], ["--method", "draft", "--k", "5000"],
                                  ["--method", "draft", "--k", "65"]])
def test_10_k_above_the_documented_maximum(tiny, tmp_path, args):
    one_line_error(run(tiny, tmp_path / "out", *args), r"--k \d+: must be an integer between 0 and 64")
    assert listing(tmp_path) == []


# 11. A run in which no request completed exits 2 (keeping its records); --num-prompts above what there is.
def test_11_run_where_every_request_failed(tiny, tmp_path):
    out = tmp_path / "out"
    result = run(tiny, out, prompts="too-long")
    *warnings, last = [line for line in result.stderr.splitlines() if line.strip()]  # (a progress bar leaves a blank)
    assert warnings == ["request too-long: prompt of 1100 tokens + max_new_tokens 4 exceeds the model's context of "
                        "1024 tokens; use a shorter prompt or fewer new tokens"]  # as it happened, one line
    result.stderr = last
    one_line_error(result, r"no request completed: all 1 failed \(the first: prompt of 1100 tokens .*exceeds the "
                   rf"model's context.*\); the records are in {out}/requests\.jsonl and {out}/summary\.json$")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_completed"] == 0 and summary["num_errors"] == 1
    assert len((out / "requests.jsonl").read_text().splitlines()) == 1


def test_11_more_prompts_than_there_are(tiny, tmp_path):
    one_line_error(run(tiny, tmp_path / "out", "--num-prompts", "100000"),
                   r"--num-prompts 100000: only 4 prompt\(s\) are available; pass at most 4")
    one_line_error(main("run", "--workload", "chat", "-n", "100000", "-o", tmp_path / "out"),
                   r"--num-prompts 100000: only 24 prompt\(s\) are available")
    assert listing(tmp_path) == []


# 12. The small ones.
def test_12_json_errors_say_at_once(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"specscope_trace": 1, "proposers": ["a"], "x": "abc\n')
    line = one_line_error(main("simulate", path), r"a\.jsonl:1: not valid JSON \(Unterminated string starting at "
                          r"column 49\)")
    assert "at at" not in line


def test_12_a_bom_is_accepted_everywhere(tmp_path, trace):
    bom_trace, bom_cost, bom_profile = tmp_path / "t.jsonl", tmp_path / "c.toml", tmp_path / "p.csv"
    bom_trace.write_text(trace.read_text(), encoding="utf-8-sig")
    bom_cost.write_text(CPU_PRESET.read_text(), encoding="utf-8-sig")
    bom_profile.write_text(PROFILE, encoding="utf-8-sig")
    result = main(*simulate(bom_trace, "--cost-model", bom_cost, "-o", tmp_path / "o.csv"))
    assert result.returncode == 0, result.stderr
    result = main("fit-cost", bom_profile, "-o", tmp_path / "fitted.toml")
    assert result.returncode == 0, result.stderr
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "hello there"}\n', encoding="utf-8-sig")
    assert main("workloads", "chat", "--source", prompts, "--prompt-field", "prompt").returncode == 0


@pytest.mark.parametrize("flag", ["--batch-size", "--max-new-tokens", "--num-prompts"])
def test_12_zero_sizes_are_one_line(tmp_path, flag):
    one_line_error(main("run", flag, "0", "-o", tmp_path / "out"), rf"{flag} 0: must be an integer >= 1")
    assert listing(tmp_path) == []


def test_12_a_repeated_column_and_a_runaway_quote(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(PROFILE.replace("seconds\n", "seconds,seconds\n").replace("\n", ",1\n").replace("seconds,1\n",
                                                                                                     "seconds\n"))
    one_line_error(main("fit-cost", path, "-o", tmp_path / "c.toml"), r"p\.csv:1: column 'seconds' appears twice")
    path.write_text(PROFILE.replace("verify,4,", 'verify,"4,') + "verify,1,2,0,0.1\n" * 300)
    line = one_line_error(main("fit-cost", path, "-o", tmp_path / "c.toml"), r"p\.csv:3: a quote that never closes")
    assert len(line) < 250
    assert listing(tmp_path) == ["p.csv"]


def test_12_a_truncated_gguf_says_truncated(tmp_path):
    from specscope.engine.loading import default_model_path, read_gguf_tensors
    from specscope.errors import SpecscopeError

    full = default_model_path().read_bytes()
    for size in (2000, len(full) // 2):
        path = tmp_path / f"cut{size}.gguf"
        path.write_bytes(full[:size])
        with pytest.raises(SpecscopeError, match=r"the file is truncated") as err:
            read_gguf_tensors(path)
        assert "reshape" not in str(err.value) and "out of bounds" not in str(err.value)


def test_12_notes_and_the_interrupt_message_are_single_lines(monkeypatch, tmp_path, trace):
    import specscope.cli.sweep as sweep_verb

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep_verb, "run_sweep", interrupted)
    long_folder = tmp_path / ("a-rather-long-folder-name-" * 4)
    result = main("sweep", trace, "-o", long_folder)
    assert result.returncode == 130 and result.traceback is None
    assert len(result.stderr.strip().splitlines()) == 1 and "Run the same command again to resume." in result.stderr
    result = main(*simulate(trace, "--proposers", "ngram,draft", "--policies", "fixed-1", "oracle"))
    notes = [line for line in result.stderr.splitlines() if line]
    assert result.returncode == 0 and notes and all(line.startswith("note: ") for line in notes), result.stderr
