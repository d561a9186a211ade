"""The measured surface: its forms (SurfaceCost, ChainCost), fitting them from a profile, held-out error, TOML."""

import csv

import numpy as np
import pytest

from specscope.costs.fit import fit_cost_model
from specscope.costs.fit_surface import nnls
from specscope.costs.presets import read_cost_model, write_cost_model
from specscope.costs.surface import ChainCost, SurfaceCost, piecewise_linear
from specscope.formats.profile import COLUMNS, read_profile


def engine_like_target(tokens, kv, rows):
    """A CPU-like step: one token cheap, 2-4 a little dearer, a jump at 5 (the tiled kernel), then linear."""
    n = np.asarray(tokens, dtype=float)
    core = np.where(n <= 1, 0.011, np.where(n <= 4, 0.0115 + 0.0004 * n, 0.021 + 0.0006 * n))
    return core + 0.0002 * rows + 3e-8 * (n / rows) * (kv + n / 2)


def engine_like_prefill(tokens, rows):
    return 0.004 + 0.00025 * tokens + 0.0002 * rows + 3e-8 * (tokens / rows) * (tokens / 2)


def draft_chain(k, kv, rows):
    return 0.0003 + 0.00005 * rows + k * (0.006 + 0.0004 * rows + 1e-8 * kv)


CATCH_UP = 0.0009  # seconds per context token the draft model takes in before its first drafts


def write_engine_profile(path, noise=0.0, seed=0):
    """A profile CSV as `specscope profile` writes it, from the shapes above (relative noise `noise`)."""
    rng = np.random.default_rng(seed)
    jitter = lambda: 1 + noise * rng.standard_normal()  # noqa: E731
    rows = []
    for b in (1, 4, 16):
        for c in (64, 256):
            for k in range(6):
                n = b * (k + 1)
                rows.append(("decode" if k == 0 else "verify", n, b * c, b * k,
                             engine_like_target(n, b * c, b) * jitter(), b, k, c, ""))
                if k:
                    rows.append(("draft:draft", b * k, b * c, b * (k + 1), draft_chain(k, b * c, b) * jitter(),
                                 b, k, c, ""))
                    rows.append(("catch_up:draft", b * c, b * c, b * (k + 1),
                                 (draft_chain(k, b * c, b) + CATCH_UP * b * c) * jitter(), b, k, c, ""))
    for b, p in ((1, 64), (1, 256), (4, 64), (4, 256), (16, 64)):
        rows.append(("prefill", b * p, 0, 0, engine_like_prefill(b * p, b) * jitter(), b, 0, p, ""))
    for b in (1, 4, 16):
        for proposer, k in (("", 0), ("draft", 3)):
            n = b * (k + 1)
            for _ in range(4):
                rows.append(("sample", n, 64 * b, b * k, (1e-4 + 2e-5 * n + 1e-5 * b) * jitter(), b, k, 32, proposer))
                extra = (5e-5 + 1e-5 * b) if proposer else 0.0
                rows.append(("overhead", n, 64 * b, b * k, (3e-4 + 2e-5 * b + extra) * jitter(), b, k, 32, proposer))
        for drafts in (0, 2):  # an adaptive policy's own time per step: more where it drafts (planning chains)
            for _ in range(4):
                rows.append(("decision", b + drafts, 64 * b, drafts, (8e-4 + 2e-4 * b + 5e-4 * (drafts > 0)) * jitter(),
                             b, 0, 32, "adaptive(ngram)"))
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for r in rows:
            writer.writerow([*r, "tiny-model", "test cpu"])
    return path


def test_nnls_matches_a_known_nonnegative_solution():
    rng = np.random.default_rng(0)
    a = rng.random((60, 9))
    x = np.array([1.0, 0.0, 2.0, 0.0, 3.0, 0.5, 0.0, 1.0, 0.2])
    assert np.allclose(nnls(a, a @ x), x, atol=1e-8)
    b = a @ np.array([1.0, -2.0, 0, 0, 0, 0, 0, 0, 0])  # the unconstrained optimum is negative: clipped at 0
    assert (nnls(a, b) >= 0).all()


def test_piecewise_linear_interpolates_and_continues_the_end_segments():
    knots, values = (1.0, 2.0, 4.0), (10.0, 12.0, 16.0)
    assert piecewise_linear(3.0, knots, values) == pytest.approx(14.0)
    assert piecewise_linear(6.0, knots, values) == pytest.approx(20.0)  # slope 2 of the last segment
    assert piecewise_linear(0.0, knots, values) == pytest.approx(8.0)
    assert piecewise_linear(-100.0, knots, values) == 0.0  # never below 0


def test_the_surface_reproduces_its_profile_points_and_round_trips_through_toml(tmp_path):
    profile = read_profile(write_engine_profile(tmp_path / "p.csv"))
    model, terms = fit_cost_model(profile, "cpu", source="p.csv")
    assert isinstance(model.target, SurfaceCost) and isinstance(model.drafts["draft"], ChainCost)
    target = np.isin(profile["step_kind"], ["decode", "verify", "prefill"])
    n, kv, rows = profile["num_batched_tokens"], profile["num_kv_tokens"], profile["batch_size"]
    prefill = profile["step_kind"] == "prefill"
    forward = np.where(prefill, engine_like_prefill(n, rows), engine_like_target(n, kv, rows))
    # the simulator's target = the forward + what sampling and overhead add per token verified and per sequence
    host = np.where(prefill, 0.0, 2e-5 * n) + (1e-5 + 2e-5) * rows
    assert np.allclose(model.target(n, kv, rows)[target], (forward + host)[target], rtol=1e-6)
    drafts = profile["step_kind"] == "draft:draft"
    k = profile["num_draft_tokens"] / rows - 1
    chain = draft_chain(k, kv, rows) + 5e-5 + 1e-5 * rows  # + the proposer's own overhead per step and sequence
    assert np.allclose(model.drafts["draft"](profile["num_draft_tokens"], kv, rows)[drafts], chain[drafts], rtol=1e-6)
    by_kind = {t.kind: t for t in terms}
    assert by_kind["target"].mean_relative_error < 1e-6 and by_kind["draft:draft"].mean_relative_error < 1e-6
    assert by_kind["target"].held_out.scored > 0 and by_kind["target"].held_out_error < 0.02
    assert model.overhead == pytest.approx(1e-4 + 3e-4, rel=1e-6)  # sample and overhead constants
    assert model.drafts["draft"].c_step == pytest.approx(0.0003 + 5e-5, rel=1e-6)  # + the proposer's overhead
    assert model.drafts["draft"].c_catch_up == pytest.approx(CATCH_UP, rel=1e-6)  # from the catch_up: rows
    assert by_kind["catch_up:draft"].mean_relative_error < 1e-6 and by_kind["catch_up:draft"].held_out.scored > 0
    decision = (model.decision, model.decision_per_sequence, model.decision_drafting)
    assert decision == pytest.approx((8e-4, 2e-4, 5e-4), rel=1e-6)  # from the `decision` rows
    assert model.decision_seconds(4) == pytest.approx(8e-4 + 4 * 2e-4) and by_kind["decision"].mean_relative_error < 1e-6
    assert model.decision_seconds(4, drafting=True) == pytest.approx(8e-4 + 4 * 2e-4 + 5e-4)
    assert model.provenance["model"] == "tiny-model" and model.provenance["hardware"] == "test cpu"
    assert set(model.provenance["held_out_relative_error"]) >= {"target", "draft:draft", "sample", "overhead"}

    path = tmp_path / "cost.toml"
    write_cost_model(path, model)
    again = read_cost_model(path)
    assert again.target == model.target and again.drafts == model.drafts and again.overhead == model.overhead
    assert (again.decision, again.decision_per_sequence, again.decision_drafting) == decision
    n, kv, rows = profile["num_batched_tokens"], profile["num_kv_tokens"], profile["batch_size"]
    assert np.array_equal(again.target(n, kv, rows), model.target(n, kv, rows))


def test_piecewise_linear_is_the_textbook_formula_bit_for_bit_on_scalars_and_arrays():
    knots, values = (1.0, 2.0, 3.0, 5.0, 8.0), (0.011, 0.012, 0.015, 0.025, 0.03)
    xs, ys = np.asarray(knots), np.asarray(values)

    def reference(x):  # interpolate inside, continue the end segments outside, >= 0
        x = np.asarray(x, dtype=np.float64)
        low = ys[0] + (x - xs[0]) * (ys[1] - ys[0]) / (xs[1] - xs[0])
        high = ys[-1] + (x - xs[-1]) * (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
        return np.maximum(np.where(x < xs[0], low, np.where(x > xs[-1], high, np.interp(x, xs, ys))), 0.0)

    points = np.concatenate([np.linspace(-30, 40, 700), list(knots), [0.999, 8.001, 1e6]])  # 708 points
    assert np.array_equal(piecewise_linear(points, knots, values), reference(points))
    assert np.array_equal(piecewise_linear(points.reshape(-1, 2), knots, values), reference(points.reshape(-1, 2)))
    assert all(piecewise_linear(float(x), knots, values) == float(reference(x)) for x in points)
    assert isinstance(piecewise_linear(2.5, knots, values), float)


def test_a_chain_charges_one_pass_per_draft_depth():
    chain = ChainCost(knots=(1.0, 4.0), seconds=(0.01, 0.016), c_kv=0.0, c_step=0.001, c_row=0.0)
    # 4 sequences drafting 3 tokens each: tokens = 4 x (3 + 1), three passes over 4 rows
    assert chain(16, 0, 4) == pytest.approx(0.001 + 3 * 0.016)
    assert chain(4, 0, 1) == pytest.approx(0.001 + 3 * 0.01)  # one sequence, k = 3
    assert chain.slope(16, 0, 4) == pytest.approx(0.016 / 4)
    assert chain.fixed(0, 4) == 0.001 and chain.per_sequence(0, 4) == 0.0
    assert chain.catch_up(500) == 0.0 and not chain.catches_up  # no catch-up unless fitted
    caught = ChainCost(knots=(1.0,), seconds=(0.01,), c_kv=0.0, c_step=0.0, c_row=0.0, c_catch_up=1e-3)
    assert caught.catches_up and caught.catch_up(500) == pytest.approx(0.5)


def test_held_out_error_grows_with_noise_and_is_reported_per_term(tmp_path):
    _, exact = fit_cost_model(read_profile(write_engine_profile(tmp_path / "a.csv")), "a")
    _, noisy = fit_cost_model(read_profile(write_engine_profile(tmp_path / "b.csv", noise=0.05, seed=1)), "b")
    exact, noisy = {t.kind: t for t in exact}, {t.kind: t for t in noisy}
    assert noisy["target"].held_out_error > exact["target"].held_out_error
    assert 0.01 < noisy["target"].held_out_error < 0.2


def test_a_profile_without_batch_sizes_gets_the_linear_form(tmp_path):
    path = tmp_path / "old.csv"
    path.write_text("step_kind,num_batched_tokens,num_kv_tokens,num_draft_tokens,seconds\n"
                    "decode,1,64,0,0.011\nverify,4,64,3,0.013\nverify,16,256,12,0.03\noverhead,0,0,0,0.001\n")
    model, terms = fit_cost_model(read_profile(path), "old")
    assert model.target.form == "linear"
    assert {t.kind for t in terms} == {"target", "overhead"}
