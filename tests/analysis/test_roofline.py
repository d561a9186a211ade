"""The report says when the simulation was priced by an analytic cost model, and shows its roofline."""

import re

from specscope.analysis.report import write_report
from specscope.costs.presets import PRESET_DIR
from specscope.costs.pricing import analytic_cost_model
from specscope.costs.presets import write_cost_model

from .conftest import build_study

TITLE = "Cost model: analytic roofline (predicted, not measured)"


def test_an_analytic_simulation_gets_its_section_and_figure(tmp_path):
    root = build_study(tmp_path / "study", runs=False)
    write_cost_model(root / "simulation_cost_model.toml", analytic_cost_model("llama-3.1-70b", "h100-sxm", tp=4).model)
    result = write_report(root)
    titles = [s.title for s in result.sections]
    assert titles.index(TITLE) == titles.index("Simulated: oracle and fixed-k against batch size") + 1
    page = result.path.read_text()
    section = page[page.index(TITLE):]
    section = section[:section.index("</section>")]
    assert "predicted from the model&#x27;s shape and the hardware&#x27;s datasheet" in section
    caption = re.search(r"<figcaption>(.*?)</figcaption>", section, re.S).group(1)
    assert "memory-bound region" in caption and "compute-bound" in caption and "Simulated by" in caption
    assert "KV tokens that fit next to the weights" in section and "h100-sxm" in section


def test_an_analytic_fitted_cost_model_file_counts_too(tmp_path):
    root = build_study(tmp_path / "study", runs=False)
    write_cost_model(root / "cost_model.toml", analytic_cost_model("llama-3.1-8b", "h100-sxm").model)
    assert TITLE in [s.title for s in write_report(root).sections]


def test_a_linear_cost_model_adds_no_section(tmp_path):
    root = build_study(tmp_path / "study", runs=False)
    (root / "simulation_cost_model.toml").write_text((PRESET_DIR / "llama3.1-8b-h100.toml").read_text())
    result = write_report(root)
    assert TITLE not in [s.title for s in result.sections] and TITLE not in result.path.read_text()
