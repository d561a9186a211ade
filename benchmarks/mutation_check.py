"""Mutation check: plant known-dangerous sampling bugs one at a time and report which tests catch each.

Each mutant is a textual patch (file in the package, exact old text, new text). For each one the
`specscope` package is copied to a fresh temporary folder, the patch applied there (a patch whose old
text no longer occurs exactly once fails loudly: update the mutant with the code), and the tests run
with that folder first on sys.path (it is pytest's working directory and PYTHONPATH), so the copy is
what they import; the working tree is never touched. The unmutated copy runs first and must pass.

The mutants are the four biases the distribution tests were written for (issue 30) — a tree leaf's
bonus from its parent's row, the correction at later positions with the draft distribution of
position 0, padded rows counted as rejected (`num_accepted < K`), a draft model that reports q at
temperature 1 while sampling at 0.8 — the classic rejection-sampling bugs (acceptance min(1, c p/q),
correction from p instead of the residual, bonus from the wrong row, off-by-one acceptance) in the
chain and the tree verifier, three plumbing bugs between proposers and the verifier, and two in the
drafter that carries out the draft policy (another row's q; the adaptive confidence stop cutting a
sampled chain on its own drafts' confidence, the bias 431af5e fixed).

Usage:  python benchmarks/mutation_check.py [--only NAME ...] [--tests PATH ...] [--list] [--json]
Prints mutant -> the tests that failed, then a summary line; `--json` adds one JSON object as the last
line. Exit status 1 if a mutant survives or the unmutated copy fails. Takes 2-4 min per mutant on 2 shared cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTS = [
    "tests/engine/test_distribution.py",
    "tests/engine/test_distribution_e2e.py",
    "tests/engine/test_verify.py",
    "tests/engine/test_tree.py::test_tree_rejection_sampling_matches_target",
]


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str  # path inside the package
    old: str
    new: str
    what: str


MUTANTS = [
    # The four biases issue 30 found undetected.
    Mutant("tree-leaf-bonus-from-parent", "engine/verify.py",
           "    bonus = int(torch.multinomial(p, 1, generator=generator))\n",
           "    if path and not kids[cur]:\n        p = target_probs[int(parents[cur]) + 1]\n"
           "    bonus = int(torch.multinomial(p, 1, generator=generator))\n",
           "tree: after a path accepted to a leaf, the bonus is drawn from the leaf's parent's row"),
    Mutant("chain-correction-with-q-of-position-0", "engine/verify.py",
           "        q_next = draft_probs[rows, at]\n", "        q_next = draft_probs[rows, 0]\n",
           "chain: the correction at position j subtracts the draft distribution of position 0"),
    Mutant("padded-rows-rejected", "engine/verify.py",
           "    rejected = num_accepted < num_draft", "    rejected = num_accepted < K",
           "chain: rows with fewer drafts than K count as rejected, so their bonus subtracts the padding"),
    Mutant("draft-reports-q-at-temperature-1", "engine/proposers/draft.py",
           "        return sample(q, generator), q\n",
           "        return sample(q, generator), sampling_probs(logits, 1.0, self.top_p)\n",
           "draft model: samples at the run's temperature (0.8) but reports q at temperature 1"),
    # Classic rejection-sampling bugs, chain and tree.
    Mutant("chain-acceptance-bias", "engine/verify.py",
           "    accept = (u * q_of_draft < p_of_draft) & valid", "    accept = (u * q_of_draft < 1.05 * p_of_draft) & valid",
           "chain: accept with min(1, 1.05 p/q)"),
    Mutant("tree-acceptance-bias", "engine/verify.py",
           "            if u * q_x < float(p[x]):", "            if u * q_x < 1.05 * float(p[x]):",
           "tree: accept with min(1, 1.05 p/q)"),
    Mutant("chain-correction-from-p", "engine/verify.py",
           "    residual = (p_next - q_next * rejected[:, None].to(p_next.dtype)).clamp(min=0.0)\n",
           "    residual = p_next.clone()\n",
           "chain: the correction is drawn from p instead of normalize(max(p - q, 0))"),
    Mutant("tree-correction-from-p-sampled", "engine/verify.py",
           "                residual = (p - q).clamp(min=0.0)\n", "                residual = p.clone()\n",
           "tree, sampled drafts: after a rejection the next sibling and the bonus see p, not the residual"),
    Mutant("tree-correction-keeps-rejected-token", "engine/verify.py",
           "                residual = p.clone()\n                residual[x] = 0.0\n", "                residual = p.clone()\n",
           "tree, deterministic drafts: a rejected token is not removed from p"),
    Mutant("chain-bonus-from-wrong-row", "engine/verify.py",
           "    p_next = target_probs[rows, num_accepted]",
           "    p_next = target_probs[rows, num_accepted.clamp(max=max(K - 1, 0))]",
           "chain: after all K drafts are accepted the bonus is drawn from row K - 1 instead of row K"),
    Mutant("chain-off-by-one-acceptance", "engine/verify.py",
           "    p_of_draft = target_probs[:, :K].gather", "    p_of_draft = target_probs[:, 1 : K + 1].gather",
           "chain: draft j is accepted against row j + 1 (the row after it) instead of row j"),
    Mutant("tree-off-by-one-acceptance", "engine/verify.py",
           "            if u * q_x < float(p[x]):", "            if u * q_x < float(target_probs[j + 1][x]):",
           "tree: a child is accepted against its own row instead of its parent's (residual) p"),
    # Plumbing between proposers and the verifier.
    Mutant("tree-children-q-of-wrong-parent", "engine/proposers/draft.py",
           "q.repeat_interleave(branching, dim=0).reshape(", "q.repeat(branching, 1).reshape(",
           "draft tree: children are reported with the q of another node (or sequence) at their level"),
    Mutant("head-q-in-draft-vocab-ids", "engine/proposers/eagle.py",
           "        full[:, self.ids] = q\n", "        full[:, : q.shape[-1]] = q\n",
           "EAGLE-3 / MTP with a reduced draft vocabulary: q left in draft ids instead of mapped to target ids"),
    Mutant("tree-q-of-first-sequence", "engine/engine.py",
           "proposal.draft_probs[b, :n].to(self.device)", "proposal.draft_probs[0, :n].to(self.device)",
           "engine, tree: every sequence of the batch is verified with the first sequence's q"),
    # The drafter (engine/drafting.py: fixed k and --k adaptive) between the proposers and the verifier.
    Mutant("drafter-q-of-another-row", "engine/drafting.py",
           "        out[r, : p.shape[0]] = p\n",
           "        n = min(p.shape[0], some.shape[0])\n        out[r, :n] = some[:n]\n",
           "drafter: every sampled row is verified with the q of the batch's first sampled row"),
    Mutant("drafter-cuts-sampled-chains-on-their-confidence", "engine/drafting.py",
           "                                             sampled=sampled)", "                                             sampled=None)",
           "drafter, adaptive: the post-hoc stop may cut a sampled chain on its drafts' own confidence "
           "(the bias fixed in 431af5e)"),
]


def apply(root: Path, mutant: Mutant | None) -> None:
    """Copy the package under root and apply the mutant's patch (exactly one occurrence, or exit)."""
    shutil.copytree(REPO / "specscope", root / "specscope", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if mutant is None:
        return
    path = root / "specscope" / mutant.file
    text = path.read_text()
    found = text.count(mutant.old)
    if found != 1:
        sys.exit(f"mutant {mutant.name}: its old text occurs {found} times in specscope/{mutant.file} (need exactly 1); "
                 "update the mutant to the current code")
    path.write_text(text.replace(mutant.old, mutant.new))


def run_tests(root: Path, tests: list[str]) -> tuple[list[str], list[str], float]:
    """(failed test ids, errors outside tests, seconds) of pytest over `tests`, importing the package copy in root."""
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    where = subprocess.run([sys.executable, "-c", "import specscope; print(specscope.__file__)"], cwd=root, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    if not where.startswith(str(root)):
        sys.exit(f"the tests would import specscope from {where}, not the mutated copy in {root}")
    report = root / "report.xml"
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(REPO),
                           "-c", str(REPO / "pyproject.toml"), f"--junitxml={report}", *[str(REPO / t) for t in tests]],
                          cwd=root, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    failed, errors = [], []
    if report.is_file():
        for case in ET.parse(report).getroot().iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                failed.append(f"{Path(case.get('classname', '').replace('.', '/')).name}::{case.get('name')}")
    if proc.returncode not in (0, 1):  # 1 = some tests failed; anything else = pytest could not run them
        errors.append(proc.stdout[-2000:] + proc.stderr[-2000:])
    return failed, errors, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", help="run only these mutants (names from --list)")
    parser.add_argument("--tests", nargs="*", default=TESTS, help="test paths (relative to the repository)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args()
    if args.list:
        for m in MUTANTS:
            print(f"{m.name:40s} {m.what}")
        return 0
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only]
    unknown = set(args.only or ()) - {m.name for m in MUTANTS}
    if unknown:
        sys.exit(f"unknown mutant(s) {', '.join(sorted(unknown))}; see --list")

    rows, ok = [], True
    for mutant in [None] + chosen:
        with tempfile.TemporaryDirectory(prefix="specscope-mutant-") as tmp:
            apply(Path(tmp), mutant)
            failed, errors, seconds = run_tests(Path(tmp), args.tests)
        name = "(unmutated)" if mutant is None else mutant.name
        if errors:
            print(f"{name}: pytest did not run the tests:\n{errors[0]}", file=sys.stderr)
            ok = False
        if mutant is None:
            print(f"{name:40s} {'passes' if not failed else 'FAILS: ' + ', '.join(failed)}  ({seconds:.0f} s)", flush=True)
            ok &= not failed and not errors
            if failed or errors:
                break
            continue
        caught = bool(failed)
        ok &= caught
        print(f"{name:40s} {'caught by ' + str(len(failed)) if caught else 'SURVIVES'}  ({seconds:.0f} s)", flush=True)
        for test in failed:
            print(f"    {test}")
        rows.append({"mutant": name, "what": mutant.what, "caught": caught, "failed_tests": failed,
                     "seconds": round(seconds, 1)})
    survived = [r["mutant"] for r in rows if not r["caught"]]
    print(f"{len(rows) - len(survived)} of {len(rows)} mutants caught" + (f"; surviving: {', '.join(survived)}" if survived else ""))
    if args.json:
        print(json.dumps({"tests": args.tests, "mutants": rows, "all_caught": not survived and ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
