"""Cost models: the published preset, validation of cost files, and fitting from a profile CSV."""

import numpy as np
import pytest

from specscope.costs.model import LinearCost, VerifyFraction
from specscope.costs.presets import available_presets, load_cost_model
from specscope.costs.fit import fit_cost_model, nonnegative_least_squares
from specscope.costs.presets import read_cost_model, write_cost_model
from specscope.formats.profile import read_profile
from specscope.errors import SpecscopeError


def test_published_preset_has_the_published_constants():
    assert "llama3.1-8b-h100" in available_presets()
    m = load_cost_model("llama3.1-8b-h100")
    assert m.target == LinearCost(5.88590713e-03, 2.10103129e-05, 3.92645679e-08)
    assert m.drafts["eagle"] == LinearCost(2.13526175e-03, 8.41429603e-07, 2.37768493e-09)
    assert m.drafts["ngram"] == VerifyFraction(0.005875)
    assert m.overhead == 1.20683946e-03 and m.switching == 0.0
    assert "SpecDecode-Bench" in m.provenance["source"]
    assert m.target(8, 1000) == pytest.approx(5.88590713e-03 + 8 * 2.10103129e-05 + 1000 * 3.92645679e-08)


def test_unknown_preset_lists_the_available_ones():
    with pytest.raises(SpecscopeError, match=r"Unknown cost model 'h200'. Available: .*llama3.1-8b-h100"):
        load_cost_model("h200")


GOOD = """
name = "mine"
[target]
c_fixed = 0.01
c_tok = 1e-5
c_kv = 1e-8
[overhead]
per_step = 0.001
[draft.eagle]
c_fixed = 0.002
c_tok = 1e-6
c_kv = 1e-9
[draft.ngram]
form = "verify_fraction"
fraction = 0.01
"""


@pytest.mark.parametrize("edit,message", [
    (("c_kv = 1e-8", "c_kv = -1e-8"), r"\[target\] c_kv = -1e-08 is negative"),
    (("fraction = 0.01", "fraction = -0.5"), r"\[draft.ngram\] fraction = -0.5 is negative"),
    (("per_step = 0.001", "per_step = 'fast'"), r"\[overhead\] per_step = 'fast' is not a finite number"),
    (('form = "verify_fraction"', 'form = "table"'), r"\[draft.ngram\] form = 'table' is unknown"),
    (("[target]\nc_fixed = 0.01\n", "[target]\n"), r"\[target\] is missing 'c_fixed'"),
    (("[overhead]\nper_step = 0.001\n", ""), r"missing table \[overhead\]"),
    (("name = \"mine\"", "name = "), r"not valid TOML"),
])
def test_bad_cost_files(tmp_path, edit, message):
    path = tmp_path / "mine.toml"
    path.write_text(GOOD.replace(*edit))
    with pytest.raises(SpecscopeError, match=rf"mine.toml: .*{message}"):
        load_cost_model(str(path))


def test_cost_file_round_trip(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(GOOD)
    model = load_cost_model(path)
    assert model.name == "mine" and model.drafts["ngram"] == VerifyFraction(0.01)
    write_cost_model(tmp_path / "copy.toml", model, header_comment="a copy")
    again = read_cost_model(tmp_path / "copy.toml")
    assert (again.target, again.drafts, again.overhead) == (model.target, model.drafts, model.overhead)


def test_nonnegative_least_squares_clamps_what_plain_least_squares_makes_negative():
    rng = np.random.default_rng(0)
    x = np.column_stack([np.ones(50), rng.uniform(0, 100, 50), rng.uniform(0, 1000, 50)])
    y = 2.0 + 0.5 * x[:, 1] - 0.001 * x[:, 2]  # a truly negative KV slope
    plain, *_ = np.linalg.lstsq(x, y, rcond=None)
    assert plain[2] < 0
    coef = nonnegative_least_squares(x, y)
    assert (coef >= 0).all() and coef[2] == 0.0
    # on its support it is the least-squares solution
    sub, *_ = np.linalg.lstsq(x[:, :2], y, rcond=None)
    assert coef[:2] == pytest.approx(sub)


def make_profile(path, noise=0.01, seed=0):
    rng = np.random.default_rng(seed)
    lines = ["step_kind,num_batched_tokens,num_kv_tokens,num_draft_tokens,seconds"]
    for _ in range(60):
        n, kv = int(rng.integers(1, 512)), int(rng.integers(0, 100_000))
        t = (5e-3 + 2e-5 * n + 4e-8 * kv) * (1 + noise * rng.standard_normal())
        lines.append(f"{rng.choice(['prefill', 'verify', 'decode'])},{n},{kv},0,{t:.9f}")
    for _ in range(40):
        d, kv = int(rng.integers(2, 200)), int(rng.integers(0, 100_000))
        t = (2e-3 + 8e-7 * d + 2e-9 * kv) * (1 + noise * rng.standard_normal())
        lines.append(f"draft:eagle,0,{kv},{d},{t:.9f}")
    for _ in range(20):
        lines.append(f"overhead,0,0,0,{1.2e-3 * (1 + noise * rng.standard_normal()):.9f}")
        lines.append(f"sample,0,0,0,{0.3e-3 * (1 + noise * rng.standard_normal()):.9f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_fit_recovers_known_coefficients(tmp_path):
    profile = read_profile(make_profile(tmp_path / "p.csv"))
    model, terms = fit_cost_model(profile, "fitted", source="p.csv")
    assert model.target.c_fixed == pytest.approx(5e-3, rel=0.03)
    assert model.target.c_tok == pytest.approx(2e-5, rel=0.03)
    assert model.target.c_kv == pytest.approx(4e-8, rel=0.03)
    assert model.drafts["eagle"].c_fixed == pytest.approx(2e-3, rel=0.03)
    assert model.drafts["eagle"].c_tok == pytest.approx(8e-7, rel=0.1)
    assert model.overhead == pytest.approx(1.5e-3, rel=0.03)
    by_kind = {t.kind: t for t in terms}
    assert set(by_kind) == {"target", "draft:eagle", "overhead", "sample"}
    assert by_kind["target"].mean_relative_error < 0.02 and by_kind["target"].rows == 60
    exact, _ = fit_cost_model(read_profile(make_profile(tmp_path / "q.csv", noise=0.0)), "exact")
    assert exact.target.c_kv == pytest.approx(4e-8, rel=1e-6)


@pytest.mark.parametrize("text,message", [
    ("", r"the file is empty"),
    ("step_kind,seconds\nverify,1\n", r":1: missing column\(s\) num_batched_tokens, num_kv_tokens, num_draft_tokens"),
    ("step_kind,num_batched_tokens,num_kv_tokens,num_draft_tokens,seconds\nverify,8,x,0,0.1\n",
     r"p.csv:2: num_kv_tokens = 'x' is not an integer"),
    ("step_kind,num_batched_tokens,num_kv_tokens,num_draft_tokens,seconds\nverify,8,1,0,-0.1\n",
     r"p.csv:2: seconds = -0.1 must be a positive duration"),
    ("step_kind,num_batched_tokens,num_kv_tokens,num_draft_tokens,seconds\nwarmup,8,1,0,0.1\n",
     r"p.csv:2: step_kind 'warmup' is unknown"),
    ("step_kind,num_batched_tokens,num_kv_tokens,num_draft_tokens,seconds\n", r"no data rows"),
])
def test_bad_profiles(tmp_path, text, message):
    path = tmp_path / "p.csv"
    path.write_text(text)
    with pytest.raises(SpecscopeError, match=message):
        read_profile(path)


def test_a_profile_without_target_rows_cannot_be_fitted(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("step_kind,num_batched_tokens,num_kv_tokens,num_draft_tokens,seconds\noverhead,0,0,0,0.001\n")
    with pytest.raises(SpecscopeError, match="no target rows"):
        fit_cost_model(read_profile(path), "x")


# Issue 24: cases 3 (costs that divide by zero), 4 (denormal seconds), 12 (BOM, repeated column, runaway quote).
@pytest.mark.parametrize("edit,message", [
    (("c_fixed = 0.01\nc_tok = 1e-5\nc_kv = 1e-8\n[overhead]\nper_step = 0.001",
      "c_fixed = 0.0\nc_tok = 0.0\nc_kv = 1e-8\n[overhead]\nper_step = 0.0"),
     r"the cheapest step \(\[target\] on one token with no KV, plus \[overhead\] per_step\) takes 0 s; a step takes time"),
    (("c_fixed = 0.01\nc_tok = 1e-5\nc_kv = 1e-8\n[overhead]\nper_step = 0.001",
      "c_fixed = 1e-320\nc_tok = 0.0\nc_kv = 0.0\n[overhead]\nper_step = 0.0"), r"the cheapest step .* takes 9.99989e-321 s"),
    (("c_fixed = 0.01", "c_fixed = 1e308"), r"\[target\] c_fixed = 1e\+308 is more than 1e\+06 seconds"),
    (("per_step = 0.001", "per_step = [0.001]"), r"\[overhead\] per_step = \[0.001\] is not a finite number"),
    (("c_tok = 1e-5", "c_tok = [1e-5, 2e-5]"), r"\[target\] c_tok = \[1e-05, 2e-05\] must be one number"),
    (("per_step = 0.001", "per_step = 0.001\nper_stpe = 0.002"), r"\[overhead\] has an unknown key 'per_stpe'"),
    (("name = \"mine\"", "name = \"mine\"\nnmae = \"x\""), r"the top level has an unknown key 'nmae'"),
    (("name = \"mine\"", "name = 3"), r"name = 3 must be a string"),
])
def test_cost_files_out_of_range(tmp_path, edit, message):
    path = tmp_path / "mine.toml"
    assert edit[0] in GOOD
    path.write_text(GOOD.replace(*edit, 1))
    with pytest.raises(SpecscopeError, match=rf"mine.toml: .*{message}"):
        load_cost_model(path)


def test_a_target_priced_by_its_kv_alone_is_fine_with_a_per_step_overhead(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(GOOD.replace("c_fixed = 0.01\nc_tok = 1e-5", "c_fixed = 0.0\nc_tok = 0.0", 1))
    assert load_cost_model(path).target == LinearCost(0.0, 0.0, 1e-8)  # as a fit on a noisy machine may give


def test_a_bom_is_read_in_cost_files_and_profiles(tmp_path):
    (tmp_path / "mine.toml").write_text(GOOD, encoding="utf-8-sig")
    assert load_cost_model(tmp_path / "mine.toml").name == "mine"
    (tmp_path / "p.csv").write_text("step_kind,num_batched_tokens,num_kv_tokens,num_draft_tokens,seconds\n"
                                    "verify,8,1,0,0.1\n", encoding="utf-8-sig")
    assert list(read_profile(tmp_path / "p.csv")["step_kind"]) == ["verify"]


HEADER_ROW = "step_kind,num_batched_tokens,num_kv_tokens,num_draft_tokens,seconds\n"


@pytest.mark.parametrize("text,message", [
    (HEADER_ROW + "verify,8,1,0,1e-320\n", r"p.csv:2: seconds = 1e-320 must be a positive duration, from 1e-09"),
    (HEADER_ROW + "verify,8,1,0,2e6\n", r"p.csv:2: seconds = 2e6 must be a positive duration"),
    (HEADER_ROW + "verify,8,10000000000,0,0.1\n", r"p.csv:2: num_kv_tokens = 10000000000 is not a token count"),
    (HEADER_ROW.replace("seconds\n", "seconds,seconds\n") + "verify,8,1,0,0.1,0.2\n",
     r"p.csv:1: column 'seconds' appears twice in the header"),
    (HEADER_ROW + 'verify,"8,1,0,0.1\n' + "verify,8,1,0,0.1\n" * 400, r"p.csv:2: a quote that never closes"),
    (HEADER_ROW + "verify,8,1,0\n", r"p.csv:2: fewer values \(4\) than the header has columns \(5"),
])
def test_profiles_out_of_range_or_malformed(tmp_path, text, message):
    path = tmp_path / "p.csv"
    path.write_text(text)
    with pytest.raises(SpecscopeError, match=message) as err:
        read_profile(path)
    assert len(str(err.value)) < 300
