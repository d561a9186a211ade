"""Which sweep steps are done, and writing each step's output so that an interruption loses nothing.

A measured cell is a folder `runs/<cell>/` holding `requests.jsonl`, `summary.json` and
`cell.json` (the settings it ran with). It is built in `sweep/tmp/<cell>/` and renamed into place
only when complete, so `runs/` never holds half a cell: Ctrl-C or a crash in the middle of a cell
leaves at most a temporary folder, removed on the next start.

Traces and the profile are single files written atomically; their settings are stored in
`sweep/done/<step>.json` AFTER the file, so a stamp always describes a complete file.

A step is done when its output exists and its stored settings equal the config's; a step whose
settings changed is run again and replaces the old output (never reused silently).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable

from specscope.formats.files import write_json_atomic
from specscope.formats.layout import CELL_SETTINGS, STATE_DIR, SUMMARY_JSON
from specscope.study.sweep.config import RUN, Step

DONE, MISSING, CHANGED = "done", "missing", "changed"


def temp_dir(root: Path) -> Path:
    return root / STATE_DIR / "tmp"


def stamp_path(root: Path, step: Step) -> Path:
    return root / STATE_DIR / "done" / f"{step.name}.json"


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def status(root: Path, step: Step) -> str:
    """DONE, MISSING (never run, or unreadable) or CHANGED (ran with other settings)."""
    out = root / step.output
    if step.kind == RUN:
        if not (out / SUMMARY_JSON).is_file():
            return MISSING
        stored = _read_json(out / CELL_SETTINGS)
        summary = _read_json(out / SUMMARY_JSON)
        if not isinstance(summary, dict) or summary.get("partial"):
            return MISSING
    else:
        if not out.is_file():
            return MISSING
        stored = _read_json(stamp_path(root, step))
    if stored is None:
        return CHANGED if step.kind == RUN else MISSING
    return DONE if stored == _normal(step.settings) else CHANGED


def _normal(settings: dict) -> dict:
    """Settings as they read back from JSON (tuples become lists)."""
    return json.loads(json.dumps(settings))


def write_cell(root: Path, step: Step, fill: Callable[[Path], None]) -> Path:
    """Run `fill(folder)` on a fresh temporary folder, then move it to `root/step.output` whole.

    An exception (KeyboardInterrupt included) inside `fill` removes the temporary folder and
    leaves any earlier output untouched.
    """
    dest = root / step.output
    tmp = temp_dir(root) / step.name
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        fill(tmp)
        write_json_atomic(tmp / CELL_SETTINGS, step.settings)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():  # a cell that ran with other settings: set it aside, then drop it
        old = temp_dir(root) / f"{step.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, dest)
    return dest


def mark_done(root: Path, step: Step) -> None:
    """Store a file step's settings (after its output was written)."""
    write_json_atomic(stamp_path(root, step), step.settings)


def forget(root: Path, step: Step) -> None:
    """Drop a file step's stamp before it is re-run (so a crash cannot pair old settings with new output)."""
    stamp_path(root, step).unlink(missing_ok=True)


def clean_temporaries(root: Path) -> None:
    """Remove what an interrupted sweep left half-written."""
    shutil.rmtree(temp_dir(root), ignore_errors=True)


def stray_cells(root: Path, steps: list[Step]) -> list[str]:
    """Cell folders under runs/ that the config does not list (they still appear in the report)."""
    runs = root / "runs"
    wanted = {Path(s.output).name for s in steps if s.kind == RUN}
    if not runs.is_dir():
        return []
    return sorted(p.name for p in runs.iterdir() if p.is_dir() and p.name not in wanted)
