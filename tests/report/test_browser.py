"""The HTML report in a real headless browser: it renders, every image loads, and nothing
logs a console error. Skipped when no chromium is installed (.ci/run installs Debian's)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from PIL import Image

from pulse.report import write_report

from .conftest import full_rows, make_run, manifest

BROWSER = next(
    (p for name in ("chromium", "chromium-browser", "google-chrome") if (p := shutil.which(name))),
    None,
)
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(BROWSER is None, reason="no chromium / google-chrome on PATH"),
]

# Injected into a copy of the report (the report itself has no script): after load, count the
# images that decoded, and record console errors and failed loads (captured: a resource's error
# does not bubble) in the DOM, which --dump-dom prints.
PROBE = """<script>
const fail = m => document.body.dataset.errors = (document.body.dataset.errors || "") + m + ";";
const consoleError = console.error;
console.error = (...args) => { fail(args.join(" ")); consoleError(...args); };
window.addEventListener("error", e => fail(e.message || "failed: " + (e.target.src || "?")), true);
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const loaded = images.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.dataset.images = loaded + "/" + images.length;
  document.body.dataset.height = document.documentElement.scrollHeight;
});
</script>"""
FLAGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--hide-scrollbars",
    "--no-first-run",
    # Any network request fails loudly: a self-contained page makes none.
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--enable-logging=stderr",
    "--v=0",
]


def chromium(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BROWSER, *FLAGS, *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def console_messages(stderr: str) -> list[str]:
    """Every console message chromium logged: the report has no script, so any is a fault."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return write_report(make_run(tmp_path_factory.mktemp("browser"), full_rows(), manifest()))


def test_every_image_loads_without_console_errors(report, tmp_path):
    html = report.html.read_text(encoding="utf-8")
    probed = tmp_path / "probed.html"
    probed.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    done = chromium("--virtual-time-budget=10000", "--dump-dom", probed.as_uri(), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", done.stdout)
    assert body, done.stdout[:500]
    attributes = dict(re.findall(r'data-([a-z]+)="([^"]*)"', body.group(1)))
    count = len(report.figures)
    assert count > 0
    assert attributes.get("images") == f"{count}/{count}"
    assert "errors" not in attributes
    assert int(attributes["height"]) > 2000  # tables and figures laid out, not an empty page
    assert "<h1>pulse report: run</h1>" in done.stdout
    assert console_messages(done.stderr) == []


def test_screenshot_renders_the_page(report, tmp_path):
    shot = tmp_path / "report.png"
    done = chromium(
        "--window-size=1280,2400", f"--screenshot={shot}", report.html.as_uri(), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == (1280, 2400)
        # A rendered page has text and colour, not one flat colour.
        assert len(image.convert("RGB").getcolors(maxcolors=1_000_000) or []) > 50
    assert console_messages(done.stderr) == []
