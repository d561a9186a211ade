"""Fuzzing the input files through the real entry point (issue 24): mutated traces, profiles and cost models.

Every case is a small valid file with one mutation whose effect is known by construction: it breaks a rule
of the file's format (bytes that are not UTF-8, a value out of its range, a field of the wrong type, a
missing or repeated part, a truncated line ...) or it keeps the file valid (a BOM, CRLF line ends, blank
lines, reordered keys, an in-range value, an unknown field a format allows). Each case runs the verb that
reads the file (`simulate` for traces and cost models, `fit-cost` for profiles) in an empty folder, and:

- a malformed file exits 2 with exactly one `specscope: error:` line and no traceback, and leaves the folder
  as it was (no output, no temporary file);
- a valid file exits 0 and writes its output, which reads back (a fitted cost model loads);
- nothing else: 0 tracebacks, 0 malformed files accepted, 0 valid files refused.

Seeded and bounded: `SPECSCOPE_FUZZ_INPUTS` cases (default 320 — the issue-24 corpus size, about 15 s); the counts are printed
(`pytest -s`). A bigger corpus: `SPECSCOPE_FUZZ_INPUTS=1000 pytest -s tests/formats/test_fuzz.py`.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections import Counter
from dataclasses import dataclass

from cli_helpers import main

from specscope.settings import MAX_K

SEED = 24
NUM_INPUTS = int(os.environ.get("SPECSCOPE_FUZZ_INPUTS", "320"))
BAD_BYTES = [b"\xff", b"\xfe", b"\xc3(", b"\x80", b"\xe9", b"\xa0\xa1"]


@dataclass
class Case:
    kind: str  # trace, sdb-trace, profile, cost-model
    mutation: str
    data: bytes
    valid: bool


# ---------------------------------------------------------------------------------------------
# Valid base files


def base_trace(rng: random.Random) -> list[dict]:
    """A native trace (header + 3 requests) whose acc_len lists respect k_max and the positions left."""
    k_max = 8
    header = {"specscope_trace": 1, "model": "m", "proposers": ["ngram", "draft"], "k_max": k_max, "hardware": "cpu",
              "workload": "chat", "ngram_min": 3, "ngram_max": 7}
    requests = []
    for i in range(3):
        g = rng.randint(8, 12)
        acc = {p: [min(rng.randint(1, k_max + 1), g - j) for j in range(g)] for p in ("ngram", "draft")}
        acc["draft"][2] = 3  # a value above 2, so that k_max = 1 is out of range
        requests.append({"id": f"r{i}", "workload": "chat", "prompt_token_ids": [rng.randint(0, 99) for _ in range(6)],
                         "output_token_ids": [rng.randint(0, 99) for _ in range(g)], "acc_len": acc})
    requests[0]["draft_confidence"] = {"draft": [round(rng.random(), 3) for _ in requests[0]["output_token_ids"]]}
    return [header] + requests


def base_sdb(rng: random.Random) -> list[dict]:
    lines = []
    for i in range(3):
        g = rng.randint(6, 10)
        lines.append({"id": str(i), "prompt_token_ids": [rng.randint(0, 99) for _ in range(5)],
                      "generated_token_ids": [rng.randint(0, 99) for _ in range(g)],
                      **{f"acc_{p}": {"acc_len": [min(rng.randint(1, 5), g - j) for j in range(g)]}
                         for p in ("eagle", "ngram")}})
    return lines


PROFILE_HEADER = ["step_kind", "num_batched_tokens", "num_kv_tokens", "num_draft_tokens", "seconds"]


def base_profile(rng: random.Random) -> list[list[str]]:
    rows = []
    for tokens in (1, 4, 16):
        for kv in (64, 256):
            rows.append(["verify", tokens, kv, 0, 0.004 + 0.0005 * tokens + 2e-6 * kv])
    for proposer in ("ngram", "draft"):
        for tokens in (2, 8):
            rows.append([f"draft:{proposer}", 0, 128, tokens, 0.001 + 0.0002 * tokens])
    rows.append(["overhead", 0, 0, 0, 0.0003])
    return [list(PROFILE_HEADER)] + [[str(v) if not isinstance(v, float) else f"{v * rng.uniform(0.9, 1.1):.6g}"
                                for v in row] for row in rows]


def base_cost() -> dict:
    return {
        "name": "fuzz", "units": "seconds",
        "provenance": {"source": "test"},
        "target": {"c_fixed": 0.004, "c_tok": 0.0005, "c_kv": 2e-6},
        "overhead": {"per_step": 0.0003, "switching": 0.0},
        "draft.ngram": {"form": "verify_fraction", "fraction": 0.01},
        "draft.draft": {"c_fixed": 0.001, "c_tok": 0.0002, "c_kv": 0.0},
        "draft.eagle": {"c_fixed": 0.001, "c_tok": 0.0001, "c_kv": 0.0},
    }


# ---------------------------------------------------------------------------------------------
# Writing them (with room for values JSON and TOML writers would not produce)


class Raw(str):
    """Text put into a file as it is (an integer of 5000 digits, `NaN`, a nested bracket run)."""


def json_text(lines: list[dict], newline: str = "\n") -> str:
    raws: list[str] = []

    def mark(value):
        if isinstance(value, Raw):
            raws.append(value)
            return f"__RAW{len(raws) - 1}__"
        if isinstance(value, dict):
            return {k: mark(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mark(v) for v in value]
        return value

    text = newline.join(json.dumps(mark(line)) for line in lines) + newline
    for i, raw in enumerate(raws):
        text = text.replace(f'"__RAW{i}__"', raw)
    return text


def toml_value(value) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def toml_text(tables: dict, newline: str = "\n") -> str:
    lines = [f"{k} = {toml_value(v)}" for k, v in tables.items() if not isinstance(v, dict)]
    for name, table in tables.items():
        if isinstance(table, dict):
            lines += ["", f"[{name}]"] + [f"{k} = {toml_value(v)}" for k, v in table.items()]
    return newline.join(lines) + newline


def csv_text(rows: list[list[str]], newline: str = "\n") -> str:
    return newline.join(",".join(row) for row in rows) + newline


# ---------------------------------------------------------------------------------------------
# Mutations that make any text file malformed


def byte_mutation(rng: random.Random, data: bytes) -> tuple[str, bytes]:
    """Bytes that are not UTF-8 text: a stray byte, UTF-16, a NUL."""
    choice = rng.randrange(4)
    if choice == 0:
        at = rng.randrange(len(data))
        return "non-UTF-8 byte", data[:at] + rng.choice(BAD_BYTES) + data[at:]
    if choice == 1:
        return "UTF-16 with BOM", data.decode().encode("utf-16")
    if choice == 2:
        return "UTF-16-LE without BOM", data.decode().encode("utf-16-le")
    at = rng.randrange(len(data))
    return "NUL byte", data[:at] + b"\0" + data[at:]


def neutral_text(rng: random.Random, text: str) -> tuple[str, str]:
    """Encoding-level changes every reader accepts."""
    choice = rng.randrange(3)
    if choice == 0:
        return "UTF-8 BOM", "\ufeff" + text
    if choice == 1:
        return "CRLF line ends", text.replace("\n", "\r\n")
    lines = text.split("\n")
    at = rng.randrange(1, len(lines))
    return "blank lines", "\n".join(lines[:at] + ["", ""] + lines[at:])


# ---------------------------------------------------------------------------------------------
# Traces (native)


BAD_ACC = [0, -1, 1.5, "2", True, None, 10**9, Raw("1" * 5000), Raw("NaN"), [2], {}]
BAD_TOKENS = ["x", [-1], [1.5], [True], None, {}, [1, "2"]]


def mutate_trace(rng: random.Random) -> tuple[str, str, bool]:
    lines = base_trace(rng)
    header, requests = lines[0], lines[1:]
    req = rng.choice(requests)
    g = len(req["output_token_ids"])
    proposer = rng.choice(["ngram", "draft"])
    text = None
    m = rng.randrange(24)
    if m == 0:
        label, valid = "k_max out of range", False
        header["k_max"] = rng.choice([0, -1, "8", 1.5, True, MAX_K + 1, 10**9, 1, [8]])
    elif m == 1:
        label, valid = "k_max still covers every acc_len", True
        header["k_max"] = rng.choice([8, 9, MAX_K, None])
    elif m == 2:
        label, valid = "bad schema version", False
        header["specscope_trace"] = rng.choice([2, "1", None, True, 0])
    elif m == 3:
        label, valid = "bad proposers", False
        header["proposers"] = rng.choice([[], "ngram", [1], ["ngram", "ngram"], ["ngram", "draft", "eagle"], [""],
                                          None, ["ngram"] + [None]])
    elif m == 4:
        label, valid = "bad n-gram lengths", False
        key = rng.choice(["ngram_min", "ngram_max"])
        header[key] = rng.choice([0, -1, "3", 1.5, True, [3]])
        if rng.random() < 0.3:
            header.pop(key)  # one without the other
        elif rng.random() < 0.3:
            header["ngram_min"], header["ngram_max"] = 7, 3
    elif m == 5:
        label, valid = "n-gram lengths in range", True
        header["ngram_min"], header["ngram_max"] = rng.choice([(1, 1), (3, 3), (2, 100)])
    elif m == 6:
        label, valid = "header name of the wrong type", False
        header[rng.choice(["model", "hardware", "workload"])] = rng.choice([1, [], {}, True])
    elif m == 7:
        label, valid = "extra header and request fields", True
        header["note"] = rng.choice([1, [], {"a": None}, "x"])
        req["comment"] = rng.choice([None, [1, 2], "text"])
    elif m == 8:
        label, valid = "bad request id", False
        req["id"] = rng.choice([None, [], {}, 1.5, True, requests[0]["id"] if req is not requests[0] else requests[1]["id"]])
    elif m == 9:
        label, valid = "bad token ids", False
        req[rng.choice(["prompt_token_ids", "output_token_ids"])] = rng.choice(BAD_TOKENS)
    elif m == 10:
        label, valid = "empty prompt", False
        req["prompt_token_ids"] = []
    elif m == 11:
        label, valid = "acc_len value out of range or of the wrong type", False
        i = rng.randrange(g)
        req["acc_len"][proposer][i] = rng.choice(BAD_ACC + [g - i + 1, header["k_max"] + 2])
    elif m == 12:
        label, valid = "acc_len value in range", True
        i = rng.randrange(g)
        req["acc_len"][proposer][i] = rng.choice([1, min(header["k_max"] + 1, g - i)])
    elif m == 13:
        label, valid = "acc_len list of the wrong length or type", False
        acc = req["acc_len"][proposer]
        req["acc_len"][proposer] = rng.choice([[], "x", {}, acc[:-1], acc + [1], None])
    elif m == 14:
        label, valid = "acc_len proposers do not match the header", False
        if rng.random() < 0.5:
            req["acc_len"].pop(proposer)
        else:
            req["acc_len"]["eagle"] = [1] * g
    elif m == 15:
        label, valid = "bad draft confidence", False
        conf = requests[0]["draft_confidence"]["draft"]
        choice = rng.randrange(3)
        if choice == 0:
            conf[rng.randrange(len(conf))] = rng.choice([1.5, -0.1, "0.5", True, None, Raw("NaN"), Raw("Infinity")])
        elif choice == 1:
            conf.pop()
        else:
            requests[0]["draft_confidence"]["eagle"] = conf
    elif m == 16:
        label, valid = "draft confidence in range", True
        conf = requests[0]["draft_confidence"]["draft"]
        conf[rng.randrange(len(conf))] = rng.choice([0, 1, 0.25, [0.5, 0.4]])
    elif m == 17:
        label, valid = "missing required field", False
        req.pop(rng.choice(["id", "prompt_token_ids", "output_token_ids", "acc_len"]))
    elif m == 18:
        label, valid = "request line of the wrong shape", False
        at = rng.randrange(1, len(lines) + 1)
        text = json_text(lines[:at]) + rng.choice(["garbage\n", "[1, 2]\n", "42\n", "null\n", "[" * 5000 + "\n",
                                                   json.dumps(header) + "\n"]) + json_text(lines[at:])
    elif m == 19:
        label, valid = "line cut short", False
        full = json_text(lines)
        rows = full.split("\n")
        at = rng.randrange(len(rows) - 1)
        cut = rng.randrange(1, len(rows[at]) - 1)
        text = "\n".join(rows[:at] + [rows[at][:cut]]) + "\n"
    elif m == 20:
        label, valid = "header or requests missing", False
        text = rng.choice(["", "\n\n", json_text(lines[:1]), json_text(lines[1:])])
    elif m == 21:
        label, valid = "keys reordered", True
        lines = [dict(sorted(line.items(), key=lambda kv: rng.random())) for line in lines]
    elif m == 22:
        label, valid = "workload of a request", rng.random() < 0.5
        req["workload"] = "code" if valid else rng.choice([5, [], {}])
    else:
        label, valid = "integer token ids, large but in range", True
        req["prompt_token_ids"][0] = 2**62
    return label, text if text is not None else json_text(lines), valid


def mutate_sdb(rng: random.Random) -> tuple[str, str, bool]:
    lines = base_sdb(rng)
    line = rng.choice(lines)
    key = rng.choice(["acc_eagle", "acc_ngram"])
    acc = line[key]["acc_len"]
    m = rng.randrange(6)
    if m == 0:
        label, valid = "acc_len value out of range or of the wrong type", False
        i = rng.randrange(len(acc))
        acc[i] = rng.choice(BAD_ACC + [len(acc) - i + 1])
    elif m == 1:
        label, valid = "acc_len value in range", True
        acc[rng.randrange(len(acc))] = 1
    elif m == 2:
        label, valid = "one request with nothing generated (skipped)", True
        line[key]["acc_len"] = []
    elif m == 3:
        label, valid = "every request empty", False
        for other in lines:
            other["acc_eagle"]["acc_len"] = other["acc_ngram"]["acc_len"] = []
    elif m == 4:
        label, valid = "missing proposer on a later line", False
        lines[rng.randrange(1, len(lines))].pop(key)
    else:
        label, valid = "bad generated token ids", False
        line["generated_token_ids"] = rng.choice(BAD_TOKENS)
    return label, json_text(lines), valid


# ---------------------------------------------------------------------------------------------
# Profiles


def mutate_profile(rng: random.Random) -> tuple[str, str, bool]:
    rows = base_profile(rng)
    r = rng.randrange(1, len(rows))
    m = rng.randrange(11)
    if m == 0:
        label, valid = "step_kind unknown", False
        rows[r][0] = rng.choice(["", "foo", "draft:", "Target", "verify "]) if rng.random() < 0.8 else "draft: "
        if rows[r][0] == "verify ":
            valid = True  # surrounding spaces are stripped
    elif m == 1:
        label, valid = "step_kind known", True
        rows[r][0] = rng.choice(["verify", "decode", "prefill", "sample", "draft:other"])
    elif m == 2:
        label, valid = "token count out of range or not an integer", False
        rows[r][rng.randrange(1, 4)] = rng.choice(["-1", "1.5", "x", "1e3", str(10**10), "nan", "1" * 5000])
    elif m == 3:
        label, valid = "token count in range", True
        rows[r][rng.randrange(1, 4)] = rng.choice(["0", "7", " 12 ", "", "1000000000"])
    elif m == 4:
        label, valid = "seconds out of range or not a number", False
        rows[r][4] = rng.choice(["0", "-1", "nan", "inf", "1e-320", "x", "", "1e400", "2e6", "0x10"])
    elif m == 5:
        label, valid = "seconds in range", True
        rows[r][4] = rng.choice(["1e-3", "0.5", " 0.02 ", "1e-9", "3"])
    elif m == 6:
        label, valid = "header broken", False
        choice = rng.randrange(3)
        if choice == 0:
            rows[0][rng.randrange(5)] = "renamed"
        elif choice == 1:
            name = rng.choice(PROFILE_HEADER)
            rows = [row + [name if i == 0 else row[PROFILE_HEADER.index(name)]] for i, row in enumerate(rows)]
        else:
            rows[0][rng.randrange(5)] = ""
    elif m == 7:
        label, valid = "row of the wrong length", False
        rows[r] = rows[r][:-1] if rng.random() < 0.5 else rows[r] + ["1"]
    elif m == 8:
        label, valid = "a quote that never closes", False
        rows[r][rng.randrange(5)] = '"' + rows[r][rng.randrange(5)]
    elif m == 9:
        label, valid = "no target rows, or no rows", False
        rows = rng.choice([[rows[0]], [row for row in rows if row[0] != "verify"]])
        if len(rows) == 1 and rng.random() < 0.3:
            rows = []
    else:
        label, valid = "extra column, quoted values, reordered columns", True
        order = list(range(5))
        rng.shuffle(order)
        rows = [[row[i] for i in order] + (["note"] if j == 0 else [f'"{j}"']) for j, row in enumerate(rows)]
    return label, csv_text(rows) if rows else "", valid


# ---------------------------------------------------------------------------------------------
# Cost models


BAD_COEFFICIENTS = [-1, "0.1", float("nan"), float("inf"), True, [], {}, 1e308, 2e6, [1, 2], "", Raw("1" * 5000)]


def mutate_cost(rng: random.Random) -> tuple[str, str, bool]:
    tables = base_cost()
    coefficient_tables = [name for name, t in tables.items() if isinstance(t, dict) and name != "provenance"]
    name = rng.choice(coefficient_tables)
    key = rng.choice([k for k in tables[name] if k != "form"])
    text = None
    m = rng.randrange(12)
    if m == 0:
        label, valid = "coefficient out of range or of the wrong type", False
        tables[name][key] = rng.choice(BAD_COEFFICIENTS)
    elif m == 1:
        label, valid = "coefficient in range", True
        tables[name][key] = rng.choice([0, 0.0, 1e-3, 5, 1e6])
    elif m == 2:
        valid = rng.random() < 0.5  # the cheapest step still takes time through the per-step overhead
        label = "target priced by its KV alone, " + ("with a per-step overhead" if valid else "and no overhead")
        tables["target"] = {"c_fixed": 0.0, "c_tok": 0.0, "c_kv": rng.choice([0.0, 1e-6])}
        tables["overhead"]["per_step"] = 0.0003 if valid else 0.0
    elif m == 3:
        label, valid = "required part missing", False
        choice = rng.randrange(4)
        if choice == 0:
            tables.pop("target")
        elif choice == 1:
            tables["overhead"].pop("per_step")
        elif choice == 2:
            tables.pop(rng.choice(["draft.ngram", "draft.draft"]))  # a proposer of the trace, unpriced
        else:
            tables[rng.choice(["target", "draft.draft"])].pop("c_tok")
    elif m == 4:
        label, valid = "unknown key", False
        where = rng.choice(["target", "overhead", "draft.draft", None])
        if where is None:
            tables["nmae"] = "x"
        else:
            tables[where]["c_extra"] = 0.1
    elif m == 5:
        label, valid = "bad form", False
        tables[rng.choice(["target", "draft.draft", "draft.ngram"])]["form"] = rng.choice(["nope", 3, True])
    elif m == 6:
        label, valid = "form spelled out, an unused draft, provenance fields", True
        tables["draft.draft"]["form"] = "linear"
        tables["draft.medusa"] = {"c_fixed": 0.002, "c_tok": 0.0, "c_kv": 0.0}
        tables["provenance"]["rows"] = 12
    elif m == 7:
        label, valid = "top-level value of the wrong type", False
        choice = rng.randrange(3)
        if choice == 0:
            tables["name"] = rng.choice([1, [], True])
        elif choice == 1:
            tables["units"] = rng.choice(["ms", 1])
        else:
            tables.pop("provenance")
            tables["provenance"] = rng.choice([1, "x", [1]])
    elif m == 8:
        label, valid = "not TOML", False
        good = toml_text(tables)
        text = rng.choice([good.replace("[draft.draft]", "[draf"), good + "c_fixed = 1\n[target]\n",
                           good.replace("per_step = ", "per_step == "), "a = " + "[" * 5000 + "\n" + good,
                           good.replace("c_tok = 0.0005", "c_tok = 0.0005\nc_tok = 1")])
    elif m == 9:
        label, valid = "a comment and reordered tables", True
        items = list(tables.items())
        scalars = [kv for kv in items if not isinstance(kv[1], dict)]
        others = [kv for kv in items if isinstance(kv[1], dict)]
        rng.shuffle(others)
        text = "# a fitted model\n" + toml_text(dict(scalars + others))
    elif m == 10:
        label, valid = "draft priced as a fraction of the verify step", True
        tables["draft.draft"] = {"form": "verify_fraction", "fraction": rng.choice([0.0, 0.3, 2.0])}
    else:
        label, valid = "overhead as a list", False
        tables["overhead"][rng.choice(["per_step", "switching"])] = [0.001, 0.002]
    return label, text if text is not None else toml_text(tables), valid


# ---------------------------------------------------------------------------------------------
# Running them


MUTATORS = {"trace": mutate_trace, "sdb-trace": mutate_sdb, "profile": mutate_profile, "cost-model": mutate_cost}
FILE_NAMES = {"trace": "in.jsonl", "sdb-trace": "in.jsonl", "profile": "in.csv", "cost-model": "in.toml"}


def corpus(n: int, seed: int = SEED) -> list[Case]:
    """`n` cases, the kinds in turn; about a quarter get an encoding-level mutation (malformed or neutral)."""
    rng = random.Random(seed)
    kinds = list(MUTATORS)
    cases = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        label, text, valid = MUTATORS[kind](rng)
        data = text.encode("utf-8")
        roll = rng.random()
        if roll < 0.15 and data:
            extra, data = byte_mutation(rng, data)
            label, valid = f"{label} + {extra}", False
        elif roll < 0.25 and valid and text:
            extra, text = neutral_text(rng, text)
            label, data = f"{label} + {extra}", text.encode("utf-8")
        cases.append(Case(kind, label, data, valid))
    return cases


def run_case(case: Case, folder, fixtures) -> tuple[object, set]:
    """Run the verb that reads `case`'s file in `folder` (empty but for it); returns (result, files after)."""
    path = folder / FILE_NAMES[case.kind]
    path.write_bytes(case.data)
    simulate = ["simulate", "--policies", "fixed-2", "oracle", "--batch-sizes", "1", "2", "-o", folder / "out.csv"]
    if case.kind in ("trace", "sdb-trace"):
        result = main(*simulate[:1], path, "--cost-model", fixtures["cost"], *simulate[1:])
    elif case.kind == "cost-model":
        result = main(*simulate[:1], fixtures["trace"], "--cost-model", path, *simulate[1:])
    else:
        result = main("fit-cost", path, "-o", folder / "out.toml")
    return result, {p.name for p in folder.iterdir()}


def test_mutated_inputs_exit_2_with_one_line_or_0_when_valid(tmp_path):
    from specscope.costs.presets import load_cost_model

    rng = random.Random(SEED)
    fixtures = {"cost": tmp_path / "cost.toml", "trace": tmp_path / "trace.jsonl"}
    fixtures["cost"].write_text(toml_text(base_cost()))
    fixtures["trace"].write_text(json_text(base_trace(rng)))
    counts: Counter = Counter()
    problems = []
    for i, case in enumerate(corpus(NUM_INPUTS)):
        folder = tmp_path / f"case{i:04d}"
        folder.mkdir()
        result, files = run_case(case, folder, fixtures)
        source = {FILE_NAMES[case.kind]}
        lines = result.stderr.strip().splitlines()
        counts[case.kind] += 1
        counts["valid" if case.valid else "malformed"] += 1
        if result.traceback is not None or "Traceback" in result.stderr:
            counts["tracebacks"] += 1
            problems.append((case, "traceback", (result.traceback or result.stderr).strip().splitlines()[-1]))
        elif case.valid:
            out = folder / ("out.toml" if case.kind == "profile" else "out.csv")
            if result.returncode != 0 or files != source | {out.name}:
                counts["valid refused"] += 1
                problems.append((case, f"exit {result.returncode}, files {sorted(files)}", result.stderr.strip()))
            else:
                counts["exit 0"] += 1
                if case.kind == "profile":
                    load_cost_model(out)  # what fit-cost wrote reads back
        else:
            if result.returncode == 0:
                counts["malformed accepted"] += 1
                problems.append((case, "accepted", ""))
            elif result.returncode != 2 or len(lines) != 1 or not lines[0].startswith("specscope: error: "):
                counts["not one line"] += 1
                problems.append((case, f"exit {result.returncode}", result.stderr.strip()))
            else:
                counts["exit 2 one line"] += 1
            if files != source:
                counts["files left"] += 1
                problems.append((case, f"left {sorted(files - source)}", ""))
    print(f"\nfuzz corpus (seed {SEED}): {NUM_INPUTS} inputs ({', '.join(f'{counts[k]} {k}' for k in MUTATORS)}); "
          f"{counts['malformed']} malformed -> {counts['exit 2 one line']} exit 2 with one line; {counts['valid']} "
          f"valid -> {counts['exit 0']} exit 0; tracebacks {counts['tracebacks']}, malformed accepted "
          f"{counts['malformed accepted']}, valid refused {counts['valid refused']}, files left {counts['files left']}")
    assert not problems, "\n".join(f"{c.kind} / {c.mutation}: {what} {detail}" for c, what, detail in problems[:10])
    assert counts["malformed"] > NUM_INPUTS // 3 and counts["valid"] > NUM_INPUTS // 8  # both sides are exercised
