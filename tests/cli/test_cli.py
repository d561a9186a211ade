"""The CLI assembles its verbs and reports user errors as one line with exit code 2."""

import subprocess
import sys


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "specscope", *args], capture_output=True, text=True)


def test_help_lists_verbs():
    result = run_cli("--help")
    assert result.returncode == 0
    assert "specscope" in result.stdout
