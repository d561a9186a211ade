"""Sweep state: a cell folder appears whole or not at all; changed settings are never reused."""

import json

import pytest

from specscope.study.sweep import state
from specscope.study.sweep.config import RUN, TRACE, Step


def cell(**settings):
    return Step(RUN, "chat_none_b1", "runs/chat_none_b1", {"method": "none", "k": 0, **settings})


def fill_ok(folder):
    (folder / "requests.jsonl").write_text("{}\n")
    (folder / "summary.json").write_text(json.dumps({"partial": False}))


def test_a_written_cell_is_done_until_its_settings_change(tmp_path):
    assert state.status(tmp_path, cell()) == state.MISSING
    state.write_cell(tmp_path, cell(), fill_ok)
    assert state.status(tmp_path, cell()) == state.DONE
    assert json.loads((tmp_path / "runs/chat_none_b1/cell.json").read_text())["method"] == "none"
    assert state.status(tmp_path, cell(batch_size=2)) == state.CHANGED
    state.write_cell(tmp_path, cell(batch_size=2), fill_ok)  # replaces the old folder
    assert state.status(tmp_path, cell(batch_size=2)) == state.DONE
    assert not any(state.temp_dir(tmp_path).iterdir())


def test_an_interrupted_cell_leaves_nothing_and_keeps_the_old_output(tmp_path):
    state.write_cell(tmp_path, cell(), fill_ok)

    def interrupted(folder):
        (folder / "requests.jsonl").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        state.write_cell(tmp_path, cell(batch_size=2), interrupted)
    assert (tmp_path / "runs/chat_none_b1/requests.jsonl").read_text() == "{}\n"
    assert state.status(tmp_path, cell()) == state.DONE
    assert not any(state.temp_dir(tmp_path).iterdir())


def test_a_partial_summary_is_not_done(tmp_path):
    def partial(folder):
        (folder / "summary.json").write_text(json.dumps({"partial": True}))

    state.write_cell(tmp_path, cell(), partial)
    assert state.status(tmp_path, cell()) == state.MISSING


def test_file_steps_need_their_stamp(tmp_path):
    step = Step(TRACE, "trace-chat", "traces/chat.jsonl", {"k_max": 5})
    (tmp_path / "traces").mkdir()
    (tmp_path / "traces/chat.jsonl").write_text("{}\n")
    assert state.status(tmp_path, step) == state.MISSING  # no stamp: its settings are unknown
    state.mark_done(tmp_path, step)
    assert state.status(tmp_path, step) == state.DONE
    assert state.status(tmp_path, Step(TRACE, "trace-chat", "traces/chat.jsonl", {"k_max": 6})) == state.CHANGED
    state.forget(tmp_path, step)
    assert state.status(tmp_path, step) == state.MISSING


def test_stray_cells_are_listed(tmp_path):
    (tmp_path / "runs/old_cell").mkdir(parents=True)
    assert state.stray_cells(tmp_path, [cell()]) == ["old_cell"]
