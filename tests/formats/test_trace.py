"""Traces: native round trip, SpecDecode-Bench import, and one clear error per bad input."""

import json

import numpy as np
import pytest

from specscope.errors import SpecscopeError
from specscope.simulator.synthetic import synthetic_trace
from specscope.formats.trace import NATIVE, SPECDECODE_BENCH, read_trace, write_trace


def test_native_round_trip(tmp_path):
    trace = synthetic_trace(5, seed=1, prompt_range=(3, 20), output_range=(1, 30))
    trace.requests[0].draft_confidence = {"eagle": [0.5] * len(trace.requests[0].output_token_ids)}
    path = tmp_path / "t.jsonl"
    write_trace(path, trace)
    back = read_trace(path)
    assert back.format == NATIVE and back.path == path and back.name == "t"
    assert back.header() == trace.header()
    assert back.extra["synthetic"] is True
    for a, b in zip(trace.requests, back.requests):
        assert (a.id, a.prompt_token_ids, a.output_token_ids, a.workload) == (b.id, b.prompt_token_ids,
                                                                               b.output_token_ids, b.workload)
        assert all(np.array_equal(a.acc_len[p], b.acc_len[p]) for p in trace.proposers)
    assert back.requests[0].draft_confidence == trace.requests[0].draft_confidence
    write_trace(tmp_path / "again.jsonl", back)
    assert (tmp_path / "again.jsonl").read_text() == path.read_text()


def sdb_line(i, prompt, acc_eagle, acc_ngram, **extra):
    gen = max(len(acc_eagle), len(acc_ngram))
    return json.dumps({"id": str(i), "prompt_token_ids": list(range(prompt)), "generated_token_ids": list(range(gen)),
                       "acc_eagle": {"acc_len": acc_eagle}, "acc_ngram": {"acc_len": acc_ngram}, **extra})


def test_specdecode_bench_import(tmp_path):
    path = tmp_path / "combined_gsm8k.jsonl"
    path.write_text("\n".join([
        sdb_line(134, 5, [1, 5, 4, 3, 2, 1], [1, 1, 4, 3, 2, 1]),
        sdb_line(256, 3, [1, 2, 1], [1, 1]),
        sdb_line(7, 4, [], []),  # nothing generated: skipped, as the published simulator does
    ]) + "\n")
    trace = read_trace(path)
    assert trace.format == SPECDECODE_BENCH
    assert trace.proposers == ["eagle", "ngram"]
    assert [r.id for r in trace.requests] == ["134", "256"] and trace.dropped == 1
    assert trace.requests[0].prompt_len == 5
    assert trace.requests[1].gen_len(["eagle"]) == 3 and trace.requests[1].gen_len(["eagle", "ngram"]) == 2
    assert read_trace(path, SPECDECODE_BENCH).proposers == ["eagle", "ngram"]


def write(tmp_path, lines, name="bad.jsonl"):
    path = tmp_path / name
    path.write_text("".join((l if isinstance(l, str) else json.dumps(l)) + "\n" for l in lines))
    return path


HEADER = {"specscope_trace": 1, "model": "m", "proposers": ["ngram", "eagle"], "k_max": 20}


def request(**over):
    rec = {"id": "0", "prompt_token_ids": [1, 2, 3], "output_token_ids": [4, 5, 6],
           "acc_len": {"ngram": [1, 2, 1], "eagle": [3, 2, 1]}}
    rec.update(over)
    return rec


@pytest.mark.parametrize("lines,message", [
    ([HEADER, "{not json"], r"bad.jsonl:2: not valid JSON \(Expecting property name enclosed in double quotes at column 2\)"),
    ([HEADER, request(id="0"), request(id="0")], r"bad.jsonl:3: field 'id': request id '0' appears twice"),
    ([HEADER, {"id": "0", "output_token_ids": [1], "acc_len": {}}], r":2: missing field 'prompt_token_ids'"),
    ([HEADER, request(acc_len={"ngram": [1, 1, 1]})], r":2: missing field 'acc_len.eagle'"),
    ([HEADER, request(acc_len={"ngram": [1, 0, 1], "eagle": [1, 1, 1]})],
     r":2: field 'acc_len.ngram'\[1\] = 0: acc_len values are >= 1"),
    ([HEADER, request(acc_len={"ngram": [1, 1.5, 1], "eagle": [1, 1, 1]})],
     r":2: field 'acc_len.ngram'\[1\] = 1.5: acc_len must be a list of integers"),
    ([HEADER, request(acc_len={"ngram": [1, True, 1], "eagle": [1, 1, 1]})], r"'acc_len.ngram'\[1\] = True"),
    ([HEADER, request(acc_len={"ngram": [1, 1], "eagle": [1, 1, 1]})], r"has 2 values but 'output_token_ids' has 3"),
    ([HEADER, request(acc_len={"ngram": [1, 22, 1], "eagle": [1, 1, 1]})], r"exceeds k_max \+ 1 = 21"),
    ([HEADER, request(acc_len={"ngram": [1, 1, 1], "eagle": [1, 1, 1], "x": [1, 1, 1]})],
     r"proposer 'x' is not listed in the header"),
    ([HEADER, request(prompt_token_ids=[1, -2])], r"field 'prompt_token_ids' must be a list of non-negative"),
    ([HEADER, request(draft_confidence={"eagle": [0.5, 2.0, 0.1]})], r"'draft_confidence.eagle'\[1\] = 2.0"),
    ([HEADER], r"bad.jsonl: the trace has a header but no request lines"),
    ([{**HEADER, "specscope_trace": 9}, request()], r":1: field 'specscope_trace' is 9"),
    ([{**HEADER, "proposers": []}, request()], r":1: field 'proposers' must be a non-empty list"),
    ([{"hello": 1}], r":1: cannot tell the trace format"),
    (["[1, 2]"], r":1: expected a JSON object, found list"),
])
def test_bad_native_input(tmp_path, lines, message):
    with pytest.raises(SpecscopeError, match=message):
        read_trace(write(tmp_path, lines))


def test_bad_files_and_formats(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(SpecscopeError, match=r"empty.jsonl: the file is empty"):
        read_trace(empty)
    with pytest.raises(SpecscopeError, match=r"trace file '.*missing.jsonl' does not exist"):
        read_trace(tmp_path / "missing.jsonl")
    with pytest.raises(SpecscopeError, match=r"Unknown trace format 'csv'. Available: specscope, specdecode-bench"):
        read_trace(empty, "csv")
    sdb = write(tmp_path, [sdb_line(0, 3, [2, 1], [1, 1]), json.dumps({"id": "1", "prompt_token_ids": [1],
                                                                        "generated_token_ids": [2],
                                                                        "acc_eagle": {"acc_len": [1]}})])
    with pytest.raises(SpecscopeError, match=r"bad.jsonl:2: missing field 'acc_ngram' \(present on line 1\)"):
        read_trace(sdb)
    sdb = write(tmp_path, [sdb_line(0, 3, [1, "2"], [1, 1])])
    with pytest.raises(SpecscopeError, match=r":1: field 'acc_eagle.acc_len'\[1\] = '2'"):
        read_trace(sdb)
    with pytest.raises(SpecscopeError, match="first line of a native trace is its header"):
        read_trace(sdb, NATIVE)


def test_missing_proposer_lists_the_present_ones(tmp_path):
    trace = read_trace(write(tmp_path, [HEADER, request()]))
    with pytest.raises(SpecscopeError, match=r"bad.jsonl: no acc_len for proposer 'draft'. Present: ngram, eagle"):
        trace.require_proposers(["eagle", "draft"])


# Issue 24, case 8: nonsense that used to pass with exit 0.
@pytest.mark.parametrize("lines,message", [
    ([{k: v for k, v in HEADER.items() if k != "k_max"}, request(acc_len={"ngram": [10**9, 1, 1], "eagle": [1, 1, 1]})],
     r":2: field 'acc_len.ngram'\[0\] = 1000000000: only 3 output position\(s\) are left from position 0 of 3"),
    ([HEADER, request(acc_len={"ngram": [1, 1, 2], "eagle": [1, 1, 1]})],
     r"'acc_len.ngram'\[2\] = 2: only 1 output position\(s\) are left .*cannot commit past the end"),
    ([{**HEADER, "ngram_min": 3, "ngram_max": 2}, request()], r":1: field 'ngram_min' = 3 is larger than 'ngram_max' = 2"),
    ([{**HEADER, "ngram_min": "3", "ngram_max": 7}, request()], r":1: field 'ngram_min' = '3': n-gram lengths are integers"),
    ([{**HEADER, "ngram_min": 0, "ngram_max": 7}, request()], r":1: field 'ngram_min' = 0: n-gram lengths are integers >= 1"),
    ([{**HEADER, "ngram_min": 3}, request()], r":1: field 'ngram_max' is missing; a trace records both"),
    ([{**HEADER, "k_max": 65}, request()], r":1: field 'k_max' = 65: the lookahead is an integer between 1 and 64"),
    ([{**HEADER, "specscope_trace": True}, request()], r":1: field 'specscope_trace' is True"),
    ([{**HEADER, "model": ["m"]}, request()], r":1: field 'model' = \['m'\] must be a string"),
    ([HEADER, request(prompt_token_ids=[])], r":2: field 'prompt_token_ids' is empty"),
    ([HEADER, request(id="x" * 500, workload=3)], r":2: field 'workload' = 3 must be a name"),
])
def test_nonsense_is_refused(tmp_path, lines, message):
    with pytest.raises(SpecscopeError, match=message):
        read_trace(write(tmp_path, lines))


def test_specdecode_bench_acc_len_is_bounded_by_the_positions_left(tmp_path):
    path = write(tmp_path, [sdb_line(0, 3, [10**9, 1, 1], [1, 1, 1])])
    with pytest.raises(SpecscopeError, match=r":1: field 'acc_eagle.acc_len'\[0\] = 1000000000: only 3 output"):
        read_trace(path)


def test_the_shipped_traces_and_what_the_writers_write_validate(tmp_path):
    from pathlib import Path

    shipped = sorted((Path(__file__).resolve().parents[2] / "benchmarks" / "traces").glob("*.jsonl"))
    assert len(shipped) == 4
    for path in shipped:
        trace = read_trace(path)
        assert trace.k_max == 20 and (trace.extra["ngram_min"], trace.extra["ngram_max"]) == (3, 7)
    synthetic = synthetic_trace(40, seed=5, prompt_range=(3, 20), output_range=(1, 40))
    write_trace(tmp_path / "s.jsonl", synthetic)
    assert len(read_trace(tmp_path / "s.jsonl").requests) == 40
TREE_HEADER = {"specscope_trace": 1, "model": "m", "proposers": ["eagle3", "eagle3@tree:3x2"], "k_max": 1}


def test_tree_keys_are_proposers_capped_by_the_tree_depth(tmp_path):
    # k_max 1 caps the chain at 2; the 3x2 tree's paths are 2 drafts deep, so it commits up to 3 per step
    ok = {"id": "0", "prompt_token_ids": [1, 2], "output_token_ids": [4, 5, 6, 7],
          "acc_len": {"eagle3": [1, 2, 1, 1], "eagle3@tree:3x2": [1, 3, 1, 1]}}
    trace = read_trace(write(tmp_path, [TREE_HEADER, ok]))
    assert trace.proposers == ["eagle3", "eagle3@tree:3x2"]
    assert trace.requests[0].acc_len["eagle3@tree:3x2"].tolist() == [1, 3, 1, 1]
    deep = {**ok, "acc_len": {"eagle3": [1, 2, 1, 1], "eagle3@tree:3x2": [1, 4, 1, 1]}}
    with pytest.raises(SpecscopeError, match=r"'acc_len.eagle3@tree:3x2'\[1\] = 4 exceeds the tree's depth 3"):
        read_trace(write(tmp_path, [TREE_HEADER, deep]))
    bad = {**TREE_HEADER, "proposers": ["eagle3@tree:7"]}
    with pytest.raises(SpecscopeError, match=r":1: field 'proposers': 'eagle3@tree:7' names no tree shape"):
        read_trace(write(tmp_path, [bad, {**ok, "acc_len": {"eagle3@tree:7": [1, 1, 1, 1]}}]))
