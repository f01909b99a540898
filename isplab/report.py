"""One static HTML page for an evaluation: side-by-side crops, the metrics table, plots.

Everything is embedded (PNG as base64 data URIs), so the file can be mailed or archived.
Per kept image: a row of thumbnails (input preview, every method, the reference) and a row
of the same region zoomed 2x (the most detailed window of the reference, chosen once and
used for every method). Plots of each metric against speed (and parameters where known) need
matplotlib (the ``report`` extra); without it the page says so.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from isplab.io import atomic_write

CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;margin:12px 0}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.row{display:flex;gap:8px;flex-wrap:wrap;margin:6px 0}
figure{margin:0}figcaption{font-size:12px;text-align:center}
img.zoom{image-rendering:pixelated}
"""


_LOAD_CHECK = """<script>
// rendering check (benchmarks/check_report.py): how many images decoded
window.addEventListener("load", () => {
  const imgs = Array.from(document.images);
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.setAttribute("data-images", ok + "/" + imgs.length);
});
</script>
"""


def _png(image: np.ndarray) -> str:
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]))
    if not ok:
        raise ValueError("could not encode a preview")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode()


def detail_window(reference: np.ndarray, size: int) -> tuple[int, int, int]:
    """(y, x, side) of the ``size`` window with the most gradient energy (stride size/2)."""
    h, w = reference.shape[:2]
    side = min(size, h, w)
    gray = reference.astype(np.float32).mean(axis=2)
    energy = np.abs(np.diff(gray, axis=0))[:, :-1] + np.abs(np.diff(gray, axis=1))[:-1]
    best, pos = -1.0, (0, 0)
    step = max(side // 2, 1)
    for y in range(0, max(h - side, 0) + 1, step):
        for x in range(0, max(w - side, 0) + 1, step):
            e = float(energy[y:y + side - 1, x:x + side - 1].sum())
            if e > best:
                best, pos = e, (y, x)
    return pos[0], pos[1], side


def _thumb(image: np.ndarray, width: int) -> np.ndarray:
    h, w = image.shape[:2]
    if w <= width:
        return image
    return cv2.resize(image, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)


def _plots(result: dict[str, Any]) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return ("<p><i>Plots need matplotlib: pip install -c constraints.txt "
                "-e '.[report]'</i></p>")
    methods = result["methods"]
    first = next(iter(methods.values()))
    metrics = [k for k in first if isinstance(first[k], dict)]
    parts = []
    for axis, label in (("mp_per_s", "throughput (MP/s, log)"),
                        ("parameters", "parameters (log)")):
        points = [(n, r[axis]) for n, r in methods.items() if r.get(axis)]
        if len(points) < 2:
            continue
        fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.2),
                                 squeeze=False)
        for ax, metric in zip(axes[0], metrics, strict=True):
            for name, value in points:
                ax.scatter(value, methods[name][metric]["mean"])
                ax.annotate(name, (value, methods[name][metric]["mean"]), fontsize=7)
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.set_xlabel(label)
            ax.set_ylabel(f"{metric} (mean)")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        plt.close(fig)
        uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
        parts.append(f'<img alt="{html.escape(metric)} vs {axis}" src="{uri}">')
    return "\n".join(parts) or "<p><i>Not enough methods with speed/size to plot.</i></p>"


def html_report(result: dict[str, Any], path: str | Path, crop: int = 192,
                thumb: int = 320, overwrite: bool = True) -> Path:
    """Write the HTML page of an :func:`isplab.evaluate.evaluate` result (run with
    ``previews`` > 0 for pictures) and return its path."""
    from isplab.evaluate import markdown_table

    esc = html.escape
    methods = result["methods"]
    first = next(iter(methods.values()))
    metrics = [k for k in first if isinstance(first[k], dict)]
    head = "".join(f"<th>{esc(m)} mean</th><th>{esc(m)} median</th>" for m in metrics)
    rows = []
    for name, r in methods.items():
        cells = "".join(f"<td>{r[m]['mean']:.4f}</td><td>{r[m]['median']:.4f}</td>"
                        for m in metrics)
        speed = f"{r['mp_per_s']:.2f}" if r.get("mp_per_s") else "-"
        params = f"{r['parameters']:,}" if r.get("parameters") else "-"
        rows.append(f"<tr><td>{esc(name)}</td>{cells}<td>{speed}</td><td>{params}</td>"
                    f"<td>{esc(r.get('note') or '')}</td></tr>")
    table = (f"<table><tr><th>method</th>{head}<th>MP/s</th><th>parameters</th>"
             f"<th>note</th></tr>{''.join(rows)}</table>")
    pictures = []
    for image_name, shots in (result.get("previews") or {}).items():
        ref = shots["reference"]
        y, x, side = detail_window(ref, crop)
        order = ["input", *[m for m in methods if m in shots], "reference"]
        thumbs, zooms = [], []
        for key in order:
            img = shots[key]
            if img.shape[:2] != ref.shape[:2]:  # e.g. a half-size input preview
                img = cv2.resize(img, (ref.shape[1], ref.shape[0]),
                                 interpolation=cv2.INTER_NEAREST)
            cap = esc(key)
            thumbs.append(f'<figure><img alt="{cap}" src="{_png(_thumb(img, thumb))}">'
                          f"<figcaption>{cap}</figcaption></figure>")
            region = img[y:y + side, x:x + side]
            zooms.append(f'<figure><img class="zoom" alt="{cap} zoom" width="{2 * side}" '
                         f'src="{_png(region)}"><figcaption>{cap} (2x)</figcaption></figure>')
        pictures.append(f"<h3>{esc(image_name)}</h3><div class='row'>{''.join(thumbs)}</div>"
                        f"<p>zoom on x {x}, y {y}, {side} px</p>"
                        f"<div class='row'>{''.join(zooms)}</div>")
    title = f"isplab evaluate: {result['protocol']}"
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>{CSS}</style></head><body><h1>{esc(title)}</h1>
<p>data {esc(str(result['data']))}; {len(result['images'])} images; border {result['border']};
noise {result['noise']}; seed {result['seed']}</p>
<h2>Metrics</h2>{table}
<details><summary>markdown</summary><pre>{esc(markdown_table(result))}</pre></details>
<h2>Plots</h2>{_plots(result)}
<h2>Pictures</h2>{''.join(pictures) or '<p>No previews kept.</p>'}
{_LOAD_CHECK}</body></html>
"""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(page), overwrite=overwrite)


def _markdown_to_html(text: str) -> str:
    """A markdown pipe table (header, separator, rows) as an HTML table; other lines as text."""
    esc = html.escape
    out, rows = [], []

    def flush() -> None:
        if rows:
            head, *body = rows
            out.append("<table><tr>" + "".join(f"<th>{esc(c)}</th>" for c in head) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>"
                                 for r in body) + "</table>")
            rows.clear()

    for line in text.splitlines():
        line = line.strip()
        if line.startswith("|") and line.endswith("|"):
            cells = [c.strip() for c in line[1:-1].split("|")]
            if not all(set(c) <= set("-: ") for c in cells):
                rows.append(cells)
            continue
        flush()
        if line:
            out.append(f"<p>{esc(line)}</p>")
    flush()
    return "\n".join(out)


def gallery_html(path: str | Path, title: str, sections: list[dict[str, Any]],
                 intro: str = "", thumb: int = 320, overwrite: bool = True) -> Path:
    """A self-contained page of tables and pictures (benchmarks' ``--html`` reports).

    Each section: ``{"title": str, "text": markdown (pipe tables become HTML tables),
    "images": [(caption, H x W x 3 uint8 RGB), ...]}`` (every key optional). The page carries
    the same image-load check as :func:`html_report` (``benchmarks/check_report.py``)."""
    esc = html.escape
    parts = []
    for sec in sections:
        parts.append(f"<h2>{esc(sec.get('title', ''))}</h2>")
        if sec.get("text"):
            parts.append(_markdown_to_html(sec["text"]))
        figs = [f'<figure><img alt="{esc(cap)}" src="{_png(_thumb(img, thumb))}">'
                f"<figcaption>{esc(cap)}</figcaption></figure>"
                for cap, img in sec.get("images") or []]
        if figs:
            parts.append(f"<div class='row'>{''.join(figs)}</div>")
    page = (f'<!doctype html><html><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f"<style>{CSS}</style></head><body><h1>{esc(title)}</h1>"
            f"{_markdown_to_html(intro)}{''.join(parts)}{_LOAD_CHECK}</body></html>\n")
    return atomic_write(path, lambda tmp: Path(tmp).write_text(page), overwrite=overwrite)
