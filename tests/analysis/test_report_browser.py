"""report.html in a real browser: headless Chromium loads every figure and paints a non-blank page.

Needs Debian's `chromium` package (`.ci/run` installs it); skipped with the reason when it is absent.
"""

import re
import shutil
import subprocess

import numpy as np
import pytest
from matplotlib import image as mpimg

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (Debian: apt-get install chromium); browser check skipped"
)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Marks each <img> that decoded (naturalWidth > 0) once the page has loaded; --dump-dom shows the marks.
MARK_LOADED = """<script>window.addEventListener('load', () => {
  for (const img of document.images) img.setAttribute('data-loaded', img.naturalWidth > 0 ? 'yes' : 'no');
});</script>"""


def _chromium(tmp_path, *args) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def test_every_figure_loads_and_the_page_is_not_blank(full_report, tmp_path):
    page = full_report.read_text()
    expected = page.count("<img ")
    assert expected == 19
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", MARK_LOADED + "</body>"))

    shot = tmp_path / "shot.png"
    result = _chromium(tmp_path, "--dump-dom", f"--screenshot={shot}", "--window-size=1280,3000", probe.as_uri())
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    marks = re.findall(r"<img[^>]*data-loaded=\"(\w+)\"", result.stdout)
    assert marks == ["yes"] * expected

    pixels = np.rint(mpimg.imread(shot)[..., :3] * 255).astype(np.uint32).reshape(-1, 3)
    rgb = (pixels[:, 0] << 16) | (pixels[:, 1] << 8) | pixels[:, 2]
    assert len(np.unique(rgb)) > 200  # text, tables and plotted figures, not a white page
    assert (rgb != 0xFFFFFF).mean() > 0.05
