"""One sweep at a time per study folder: a held lock names its holder; a dead holder's lock is taken over."""

import os
import subprocess
import sys

import pytest

from specscope.errors import SpecscopeError
from specscope.study.sweep.lock import holder_pid, lock_path, study_lock


def test_a_second_holder_is_refused_naming_the_first_and_the_lock_is_free_after(tmp_path):
    with study_lock(tmp_path) as path:
        assert path == lock_path(tmp_path) and holder_pid(tmp_path) == os.getpid()
        with pytest.raises(SpecscopeError, match=rf"^{tmp_path}: another sweep \(pid {os.getpid()}\) is writing this "
                                                 r"study folder; wait for it to finish"):
            with study_lock(tmp_path):
                pass
    assert holder_pid(tmp_path) is None  # released: emptied
    with study_lock(tmp_path):
        assert holder_pid(tmp_path) == os.getpid()


def test_the_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    lock_path(tmp_path).parent.mkdir(parents=True)
    lock_path(tmp_path).write_text(f"{pid}\n")  # what a SIGKILLed sweep leaves
    with study_lock(tmp_path):
        assert holder_pid(tmp_path) == os.getpid()


def test_a_lock_held_by_another_process_is_refused(tmp_path):
    code = ("import sys, time; from pathlib import Path; from specscope.study.sweep.lock import study_lock\n"
            "with study_lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(SpecscopeError, match=rf"another sweep \(pid {holder.pid}\)"):
            with study_lock(tmp_path):
                pass
    finally:
        holder.kill()
        holder.wait()
    with study_lock(tmp_path):  # killed: the kernel released its lock
        pass
