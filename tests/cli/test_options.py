"""The shared options parse identically in any verb; the settings built from them load the prompts they describe."""

import typer
from typer.testing import CliRunner

from specscope.cli.options import (
    ChatOpt,
    FieldOpt,
    NumPromptsOpt,
    PromptFieldOpt,
    SeedOpt,
    SourceOpt,
    WorkloadOpt,
    run_settings,
)
from specscope.errors import SpecscopeError
from specscope.study.prompts import run_prompts

seen = {}
app = typer.Typer()


@app.command()
def fake_run(
    workload: WorkloadOpt = "chat",
    source: SourceOpt = None,
    prompt_field: PromptFieldOpt = None,
    field: FieldOpt = None,
    num_prompts: NumPromptsOpt = None,
    seed: SeedOpt = 0,
    chat: ChatOpt = None,
):
    seen.update(locals())
    seen["prompts"] = run_prompts(run_settings(workload=workload, source=source, prompt_field=prompt_field, field=field,
                                               num_prompts=num_prompts, seed=seed, chat=chat))


def test_defaults():
    result = CliRunner().invoke(app, [])
    assert result.exit_code == 0, result.output
    assert seen["workload"] == "chat" and seen["chat"] is None and seen["num_prompts"] is None
    assert len(seen["prompts"]) >= 20


def test_options_reach_the_loader(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("task,code\nRename a to b.,a = 1\nAdd a comment.,x = 2\n", encoding="utf-8")
    args = ["-w", "code-edit", "--source", str(path), "--field", "instruction=task", "--field", "input=code",
            "-n", "1", "--seed", "3", "--plain"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert seen["chat"] is False and seen["field"] == ["instruction=task", "input=code"]
    assert len(seen["prompts"]) == 1 and "```" in seen["prompts"][0].text


def test_num_prompts_must_be_positive():
    result = CliRunner().invoke(app, ["-n", "0"])
    assert isinstance(result.exception, SpecscopeError) and "--num-prompts 0" in str(result.exception)
