"""`specscope demo`: runs the shipped sweep config (the run itself takes minutes: only planned here).

The sweep machinery the demo uses is tested end to end on a tiny model in test_sweep_command.py.
"""

import json
import subprocess
import sys

from specscope.configs import DEMO_CONFIG


def test_demo_plans_the_shipped_config_into_the_default_folder(tmp_path):
    result = subprocess.run([sys.executable, "-m", "specscope", "demo", "--dry-run", "--json"], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["command"] == "demo" and summary["dry_run"] is True
    assert summary["output"] == "specscope-out" and summary["config"] == str(DEMO_CONFIG)
    steps = summary["steps"]
    assert len(steps) == 2 * 45 + 3 + 1 and set(steps.values()) == {"missing"}  # every cell twice (repeats = 2)
    assert {"code-edit_none_b1", "chat_ngram_k3_b4", "math_draft_k3_b8", "chat_eagle3_k3_b1", "math_ngram_kadaptive_b4",
            "chat_ngram_k3_b4_r2", "trace-chat", "profile"} <= set(steps)
    assert not (tmp_path / "specscope-out").exists()  # a dry run writes nothing
