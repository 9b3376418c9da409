"""Render an HTML file in headless Chromium and report what plotly drew (test helper).

CI installs Debian's Chromium with ``apt-get install -y chromium`` (/usr/bin/chromium).
``require_chromium()`` skips a test when it is missing locally, and fails it when CI is set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("LIFELONG_CHROMIUM", "/usr/bin/chromium")
# these flags are required to run as root in a container without network or GPU
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--virtual-time-budget=5000",
]
# recorded before the page's own scripts run; the dumped DOM then carries any uncaught JS errors
ERROR_PROBE = (
    "<script>window.addEventListener('error',function(e){var d=document.documentElement;"
    "d.setAttribute('data-js-errors',(d.getAttribute('data-js-errors')||'')+(e.message||'error')+'\\n');"
    "});</script>"
)


def chromium_available() -> bool:
    return Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is not None


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_chromium() -> None:
    """Skip (locally) or fail (when CI is set) if Chromium is not installed."""
    if chromium_available():
        return
    reason = f"Chromium not found at {CHROMIUM} (install it: apt-get install -y chromium)"
    if in_ci():
        pytest.fail(f"{reason}; CI must install it")
    pytest.skip(reason)


def _run_chromium(html_path: Path, extra: list[str], timeout: float) -> str:
    with tempfile.TemporaryDirectory(prefix="lifelong-chromium-") as profile:
        cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, html_path.resolve().as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}")
    return proc.stdout


def _probed_copy(html_path: Path, tmpdir: str) -> Path:
    """A copy of the page with the error probe inserted at the start of <head>."""
    text = Path(html_path).read_text(encoding="utf-8")
    i = text.find("<head>")
    text = text[: i + 6] + ERROR_PROBE + text[i + 6 :] if i >= 0 else ERROR_PROBE + text
    copy = Path(tmpdir) / Path(html_path).name
    copy.write_text(text, encoding="utf-8")
    return copy


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _PlotScanner(HTMLParser):
    """Finds ``.lifelong-plot`` divs and counts what plotly drew inside each."""

    def __init__(self) -> None:
        super().__init__()
        self.plots: list[dict] = []
        self.js_errors: list[str] = []
        self._stack: list[dict | None] = []  # per open element: the plot it opens, or None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = set((a.get("class") or "").split())
        if tag == "html" and a.get("data-js-errors"):
            self.js_errors += [e for e in (a["data-js-errors"] or "").splitlines() if e]
        opened = None
        if "lifelong-plot" in classes:
            opened = {"id": a.get("id"), "kind": a.get("data-kind"), "drawn": "js-plotly-plot" in classes,
                      "main_svg": 0, "heatmap_layers": 0, "traces": 0, "points": 0}
            self.plots.append(opened)
        current = next((p for p in reversed(self._stack) if p is not None), None)
        if current is not None:
            current["main_svg"] += tag == "svg" and "main-svg" in classes
            current["heatmap_layers"] += tag == "g" and "hm" in classes
            current["traces"] += tag == "g" and "trace" in classes
            current["points"] += tag == "path" and "point" in classes
        if tag not in VOID:
            self._stack.append(opened)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._stack and tag not in VOID:
            self._stack.pop()


def render_in_chromium(html_path: Path | str, timeout: float = 60) -> dict:
    """Load ``html_path`` in headless Chromium and return what was drawn.

    Returns {"plots": [per-plot dicts], "n_plots", "n_drawn" (plotly drew an svg into the div),
    "n_heatmaps_drawn" (heat map layers), "js_errors": [messages], "dom_chars"}.
    """
    with tempfile.TemporaryDirectory(prefix="lifelong-page-") as tmpdir:
        dom = _run_chromium(_probed_copy(Path(html_path), tmpdir), ["--dump-dom"], timeout)
    scanner = _PlotScanner()
    scanner.feed(dom)
    plots = scanner.plots
    drawn = [p for p in plots if p["drawn"] and p["main_svg"] > 0]
    return {
        "plots": plots,
        "n_plots": len(plots),
        "n_drawn": len(drawn),
        "n_heatmaps_drawn": sum(p["heatmap_layers"] for p in drawn),
        "js_errors": scanner.js_errors,
        "dom_chars": len(dom),
    }


def screenshot(html_path: Path | str, png_path: Path | str, size: str = "1200,2400",
               timeout: float = 60) -> Path:
    """Save a PNG of the rendered page (for looking at a report by eye)."""
    png = Path(png_path).resolve()
    _run_chromium(Path(html_path), [f"--screenshot={png}", f"--window-size={size}"], timeout)
    return png
