"""The HTML report of isplab evaluate: pictures, table, a rendering check in Chromium."""

from __future__ import annotations

import re

import numpy as np
import pytest
from typer.testing import CliRunner

from isplab.evaluate import evaluate
from isplab.report import detail_window, gallery_html, html_report
from tests.conftest import DATA, need

KODAK = DATA / "kodak24"


@pytest.fixture(scope="module")
def result():
    need(KODAK)
    return evaluate(["classic", "classic:malvar2004"], "demosaic", KODAK, limit=2, previews=1)


def test_report_embeds_every_picture_and_the_table(result, tmp_path):
    path = html_report(result, tmp_path / "r.html")
    page = path.read_text()
    imgs = re.findall(r'<img [^>]*src="data:image/png;base64,', page)
    # 1 kept image x (input, 2 methods, reference) x (thumbnail, zoom) + plots (if matplotlib)
    assert len(imgs) >= 8
    assert "classic:malvar2004" in page and "psnr mean" in page
    assert page.count("<h3>") == 1  # previews=1
    assert "src=\"http" not in page  # self-contained


def test_gallery_page_has_tables_pictures_and_the_load_check(tmp_path):
    img = np.random.default_rng(0).integers(0, 255, (40, 60, 3)).astype(np.uint8)
    text = "one line\n\n| method | PSNR |\n|---|---|\n| a <b> | 1.0 |\n| b | 2.0 |"
    path = gallery_html(tmp_path / "g.html", "T & t", [
        {"title": "first", "text": text, "images": [("x", img), ("y", img[::-1].copy())]},
        {"title": "second", "images": [("z", img)]}], intro="about")
    page = path.read_text()
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', page)) == 3
    assert "<th>method</th><th>PSNR</th>" in page and "<td>a &lt;b&gt;</td>" in page
    assert "|---|" not in page and "<p>one line</p>" in page and "T &amp; t" in page
    assert 'setAttribute("data-images"' in page


def test_detail_window_finds_texture():
    img = np.zeros((256, 256, 3), np.uint8)
    img[160:224, 32:96] = np.random.default_rng(0).integers(0, 255, (64, 64, 3))
    y, x, side = detail_window(img, 64)
    assert side == 64 and abs(y - 160) <= 32 and abs(x - 32) <= 32


def test_cli_writes_html_and_json(tmp_path):
    need(KODAK)
    from isplab.cli import app

    res = CliRunner().invoke(app, ["evaluate", "-m", "classic", "-p", "demosaic", "--data",
                                   str(KODAK), "--limit", "1", "--html", str(tmp_path / "r.html"),
                                   "--json", str(tmp_path / "r.json"), "-q"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r.html").stat().st_size > 10_000
    assert "previews" not in (tmp_path / "r.json").read_text()


def test_report_renders_in_headless_chromium(result, tmp_path):
    from benchmarks.check_report import check, chromium

    if chromium() is None:
        pytest.skip("chromium not installed (Debian: apt-get install chromium); "
                    "run benchmarks/check_report.py where it is")
    loaded, total = check(html_report(result, tmp_path / "r.html"))
    assert total >= 8 and loaded == total
