"""Render an isplab HTML report in headless Chromium and check that every image loads.

Makes a report (demosaic protocol, 2 Kodak24 images, classic methods) unless a file is
given, loads it with ``chromium --headless --no-sandbox --disable-gpu --dump-dom`` and reads
the ``data-images="loaded/total"`` attribute the page's load handler sets. Exit 1 when an
image failed to decode or Chromium could not render the page.

    python benchmarks/check_report.py [report.html]
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def check(path: Path) -> tuple[int, int]:
    """(images loaded, images in the page) as Chromium renders ``path``."""
    exe = chromium()
    if exe is None:
        raise RuntimeError("chromium is not installed (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
             "--virtual-time-budget=10000", "--dump-dom", path.resolve().as_uri()],
            capture_output=True, text=True, timeout=120)
    m = re.search(r'data-images="(\d+)/(\d+)"', proc.stdout)
    if not m:
        raise RuntimeError(f"the page did not finish loading in Chromium:\n{proc.stderr[-1500:]}")
    return int(m[1]), int(m[2])


def main() -> None:
    if len(sys.argv) > 1:
        path = Path(sys.argv[1])
    else:
        from isplab.evaluate import evaluate
        from isplab.report import html_report

        path = Path(tempfile.mkdtemp()) / "report.html"
        result = evaluate(["classic", "classic:malvar2004"], "demosaic",
                          ROOT.parent / "shared" / "data" / "kodak24", limit=2, previews=2)
        html_report(result, path)
    loaded, total = check(path)
    print(f"{path}: {loaded}/{total} images loaded in headless Chromium")
    sys.exit(0 if total > 0 and loaded == total else 1)


if __name__ == "__main__":
    main()
