"""Open an HTML page in headless Chromium: console errors, rendered figures, a screenshot."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=15000",
]
# Runs before any other script: records console errors and uncaught exceptions in the DOM.
CAPTURE = """<script>
window.__errors = [];
const __record = (m) => { window.__errors.push(String(m));
  document.documentElement.setAttribute('data-errors', JSON.stringify(window.__errors)); };
window.addEventListener('error', (e) => __record(e.message));
window.addEventListener('unhandledrejection', (e) => __record(e.reason));
const __consoleError = console.error;
console.error = (...a) => { __record(a.join(' ')); __consoleError(...a); };
</script>"""


@dataclass
class PageCheck:
    figures: int
    rendered: int
    errors: list[str]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run(args: list[str], profile: str) -> str:
    result = subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


def check_page(page: Path, screenshot: Path) -> PageCheck:
    """Count ``div.figure`` blocks and those holding a drawn plotly SVG; collect JS errors."""
    source = page.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / page.name
        probe.write_text(source.replace("<head>", "<head>" + CAPTURE, 1), encoding="utf-8")
        dom = _run(["--dump-dom", probe.as_uri()], str(Path(tmp) / "p1"))
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        _run(
            ["--window-size=1280,6000", f"--screenshot={screenshot}", page.resolve().as_uri()],
            str(Path(tmp) / "p2"),
        )
    blocks = dom.split('<div class="figure">')[1:]
    rendered = sum(1 for b in blocks if re.search(r'class="main-svg".*?<(path|image)', b, re.S))
    found = re.search(r"data-errors=\"([^\"]*)\"", dom)
    errors = [found.group(1)] if found else []
    return PageCheck(figures=len(blocks), rendered=rendered, errors=errors)
