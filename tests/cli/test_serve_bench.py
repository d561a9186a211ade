"""End to end on the default model: `specscope serve` as a real server process on 127.0.0.1, `specscope bench`
against it at two concurrencies, greedy outputs identical to `specscope run`'s on the same prompts, `specscope report`
showing the server cells, bad endpoints as one line, and a clean stop on SIGTERM."""

import json
import signal
import subprocess
import sys
import threading
import time

import pytest

from cli_helpers import cli

pytestmark = pytest.mark.slow

PROMPTS = ["--workload", "code-edit", "-n", "3", "--max-new-tokens", "16"]


@pytest.fixture(scope="module")
def server():
    """`specscope serve --method ngram --k 3` on a free port: (base URL, process, its stdout lines)."""
    proc = subprocess.Popen([sys.executable, "-m", "specscope", "serve", "--method", "ngram", "--k", "3", "--port", "0",
                             "--max-batch-size", "4", "--max-model-len", "1024", "--threads", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    ready = threading.Event()

    def read():
        for line in proc.stdout:
            lines.append(line)
            if "listening on" in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert ready.wait(600), "".join(lines)
        url = next(line for line in lines if "listening on" in line).split("listening on ")[1].split()[0]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        yield url, proc, lines
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)


def test_bench_against_serve_matches_run_and_reports(server, tmp_path):
    url, _, _ = server
    out = tmp_path / "study"
    result = cli("bench", "--endpoint", url, "--model", "smollm2-135m", *PROMPTS, "--concurrency", "1,2",
                 "--label", "sd-ngram-k3", "-o", out, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    cells = json.loads(result.stdout.strip().splitlines()[-1])["cells"]
    assert [c["level"] for c in cells] == ["c1", "c2"]
    for cell in cells:
        assert cell["num_completed"] == 3 and cell["num_errors"] == 0 and cell["engine"] == "specscope"
        assert cell["sd_source"] == "metrics.speculative_decoding" and cell["mean_acc_len"] >= 1.0
        assert cell["ttft_ms"]["p50"] > 0 and cell["output_throughput_tok_s"] > 0
        assert cell["server_metrics"]["num_drafts"] == cell["decode_steps"]  # counters agree with the responses
    served = {r["id"]: r["output_token_ids"] for r in
              map(json.loads, (out / "runs" / "sd-ngram-k3-c2" / "requests.jsonl").read_text().splitlines())}

    ran = cli("run", *PROMPTS, "--method", "ngram", "--k", "3", "-b", "2", "-o", tmp_path / "run")
    assert ran.returncode == 0, ran.stderr
    local = {r["id"]: r["output_token_ids"] for r in
             map(json.loads, (tmp_path / "run" / "requests.jsonl").read_text().splitlines())}
    assert served == local  # greedy through HTTP = greedy in process

    report = cli("report", out)
    assert report.returncode == 0, report.stderr
    page = (out / "report.html").read_text()
    assert "Measured on servers (specscope bench)" in page and "sd-ngram-k3-c2" in page
    assert (out / "traces" / "sd-ngram-k3.jsonl").is_file()


def test_bad_endpoints_are_one_line(server, tmp_path):
    url, _, _ = server
    for args, message in ((["--endpoint", url, "--model", "gpt-4"], "does not serve model 'gpt-4'"),
                          (["--endpoint", "http://127.0.0.1:9/v1", "--model", "m"], "no answer"),
                          (["--endpoint", url, "--model", "smollm2-135m", "--concurrency", "0"], "--concurrency")):
        result = subprocess.run([sys.executable, "-m", "specscope", "bench", *args, *PROMPTS, "-o", tmp_path / "x"],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert not (tmp_path / "x" / "runs").exists()


def test_sigterm_stops_the_server_cleanly(server):
    _, proc, lines = server
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    time.sleep(0.5)
    assert any("stopped" in line for line in lines), "".join(lines)
    assert not any("Traceback" in line for line in lines), "".join(lines)
