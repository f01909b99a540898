"""Tiled full-resolution inference in bounded memory.

The packed raw is cut into overlapping tiles; each tile runs through the model and its
output is blended into the full image with a window that is flat in the tile's interior
and ramps (raised cosine) across the overlap, so no seam shows and every output pixel's
weights sum to one. The output of a tile's outer ``overlap / 2`` pixels, where the model
sees padding instead of image, gets (almost) no weight unless it lies on the frame border.

Global operations would change colour from tile to tile. They are computed once on a
downscaled copy of the full frame (longest side ``context_size``) and shared by every tile:

- a model may define ``tile_context(x)`` returning keyword arguments for its ``forward``
  (DeepISP: ``{"transform": ...}``, its per-image colour transform);
- instance normalisation layers (PyNET, DPED) get their per-channel mean and variance from
  that frame (:class:`GlobalStatistics`), and global average pools (``nn.AdaptiveAvgPool2d``
  to 1 x 1, or any module flagged ``isplab_global = True``) their output.

"Untiled" inference with the same context is then the same function of the image as tiled
inference, up to the receptive-field effects the overlap absorbs; without it each tile
would normalise itself.

:class:`FrameContext` is the same thing in one traceable forward, ``(tile, context)``: the
ONNX export of such a model takes the downscaled frame (:func:`context_frame`) as its second
input, so an onnxruntime develop computes the global values as the torch one does.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from isplab.errors import InvalidInputError

log = logging.getLogger("isplab.infer")

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _is_global_pool(m: nn.Module) -> bool:
    if getattr(m, "isplab_global", False):
        return True
    return isinstance(m, nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d) and \
        m.output_size in (1, (1, 1))


class GlobalStatistics:
    """Freeze a model's image-global operations at the values of one reference frame.

    ``with GlobalStatistics(model) as g: g.capture(small); ... model(tile) ...``: during
    :meth:`capture` it records each ``InstanceNorm2d``'s input mean/variance and each global
    pool's output; afterwards (inside the ``with``) those layers use the recorded values.
    """

    def __init__(self, model: nn.Module):
        self.norms = [m for m in model.modules() if isinstance(m, nn.InstanceNorm2d)]
        self.pools = [m for m in model.modules() if _is_global_pool(m)]
        self.stats: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.pooled: dict[int, torch.Tensor] = {}
        self.capturing = False
        self.handles: list = []

    def __bool__(self) -> bool:
        return bool(self.norms or self.pools)

    def __enter__(self) -> GlobalStatistics:
        for m in self.norms:
            self.handles.append(m.register_forward_hook(self._norm_hook))
        for m in self.pools:
            self.handles.append(m.register_forward_hook(self._pool_hook))
        return self

    def __exit__(self, *exc) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()

    def capture(self, model: nn.Module, x: torch.Tensor, **kwargs) -> None:
        self.capturing = True
        try:
            model(x, **kwargs)
        finally:
            self.capturing = False

    def _norm_hook(self, m: nn.InstanceNorm2d, inputs, output):
        x = inputs[0]
        if self.capturing:
            var, mean = torch.var_mean(x.float(), dim=(2, 3), keepdim=True, correction=0)
            self.stats[id(m)] = (mean, var)
            return output
        mean, var = self.stats[id(m)]
        y = (x.float() - mean) * torch.rsqrt(var + m.eps)
        if m.affine:
            y = y * m.weight.float().view(1, -1, 1, 1) + m.bias.float().view(1, -1, 1, 1)
        return y.to(output.dtype)

    def _pool_hook(self, m: nn.Module, inputs, output):
        if self.capturing:
            self.pooled[id(m)] = output
            return output
        return self.pooled[id(m)]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` = CUDA when available, else CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError("device cuda asked for, but CUDA is not available")
    return dev


def available_memory(device: torch.device) -> int:
    """Bytes free for activations: CUDA's free memory, or MemAvailable on Linux (else 4 GB)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


def activation_bytes_per_pixel(model: nn.Module, kwargs: dict[str, Any], channels: int = 4,
                               probe: int = 64, dtype=torch.float32) -> float:
    """An upper bound of activation memory per input pixel: the summed size of every leaf
    module's output on a ``probe`` x ``probe`` input (the live peak is lower)."""
    total = 0

    def hook(_m, _i, out):
        nonlocal total
        if torch.is_tensor(out):
            total += out.numel() * out.element_size()

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        p = next(model.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
        with torch.inference_mode():
            model(torch.zeros(1, channels, probe, probe, device=device, dtype=dtype), **kwargs)
    finally:
        for h in handles:
            h.remove()
    return max(total, 1) / (probe * probe)


#: activation budget of an automatic tile on the CPU (bounded memory on any machine)
CPU_TILE_BUDGET = 3 << 29  # 1.5 GiB


def auto_tile(model: nn.Module, kwargs: dict[str, Any], device: torch.device, dtype,
              fraction: float = 0.25, minimum: int = 64, maximum: int = 1024,
              multiple: int = 32, budget: int | None = None, channels: int = 4) -> int:
    """Tile side (packed pixels) whose activation estimate fits ``fraction`` of free memory,
    and at most ``budget`` bytes (default :data:`CPU_TILE_BUDGET` on the CPU, none on CUDA),
    so a 12 MP develop stays within a few GB whatever the machine's size.

    The estimate is twice :func:`activation_bytes_per_pixel` (functional activations and
    concatenations are not modules, so the leaf outputs undercount them)."""
    per_px = 2 * activation_bytes_per_pixel(model, kwargs, channels=channels, dtype=dtype)
    limit = available_memory(device) * fraction
    if budget is None and device.type == "cpu":
        budget = CPU_TILE_BUDGET
    if budget is not None:
        limit = min(limit, budget)
    side = int(math.sqrt(limit / per_px))
    side = max(minimum, min(maximum, side // multiple * multiple))
    log.debug("auto tile: %.0f bytes/pixel -> %d", per_px, side)
    return side


def _ramp(n: int, overlap: int, at_start: bool, at_end: bool) -> torch.Tensor:
    """1-D blend weights for a tile of ``n`` output pixels: zero over the outer quarter of
    the overlap, a raised cosine across the next half, one inside (no ramp on frame edges)."""
    w = torch.ones(n, dtype=torch.float64)
    if overlap <= 0:
        return w
    dead, rise = overlap // 4, max(overlap // 2, 1)
    x = torch.arange(rise, dtype=torch.float64)
    ramp = 0.5 - 0.5 * torch.cos(math.pi * (x + 0.5) / rise)
    if not at_start:
        w[:dead] = 0
        w[dead:dead + rise] = ramp[: max(0, min(rise, n - dead))]
    if not at_end:
        w[n - dead:] = 0 if dead else w[n - dead:]
        w[n - dead - rise:n - dead] = torch.minimum(w[n - dead - rise:n - dead], ramp.flip(0))
    return w


def _starts(size: int, tile: int, step: int) -> list[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, step))
    starts.append(size - tile)
    return starts


def _stride(model: nn.Module) -> int:
    """The input multiple a zoo model pads to (its registry ``stride``, or the ``stride`` an
    exported ONNX file records); 1 otherwise."""
    if hasattr(model, "isplab_stride"):
        return int(model.isplab_stride)
    name = getattr(model, "isplab_name", None)
    if name is None:
        return 1
    from isplab.models import is_registered, model_entry

    return int(model_entry(name).stride) if is_registered(name) else 1


def _check_request(x: torch.Tensor, dtype: str, overlap: int,
                   device: str | torch.device) -> torch.device:
    """The device to run on, once the input, dtype and overlap are checked."""
    if x.ndim != 4 or x.shape[0] != 1:
        raise InvalidInputError(f"tiled inference takes one image 1 x C x h x w, got "
                                f"{tuple(x.shape)}")
    if dtype not in DTYPES:
        raise InvalidInputError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    dev = resolve_device(device)
    if dtype == "float16" and dev.type != "cuda":
        raise InvalidInputError("float16 inference needs CUDA; use bfloat16 or float32 on CPU")
    if overlap < 0 or overlap % 2:
        raise InvalidInputError(f"overlap must be an even number >= 0, got {overlap}")
    return dev


#: longest side of the downscaled frame the global operations are computed on
CONTEXT_SIZE = 512


def context_frame(x: torch.Tensor, context_size: int = CONTEXT_SIZE) -> torch.Tensor:
    """The frame the global operations see: ``x`` (``N x C x h x w``, the whole frame padded
    to the model's stride) area-downscaled so its longest side is ``context_size`` (``x``
    itself when it is no larger)."""
    h, w = x.shape[-2:]
    s = min(1.0, context_size / max(h, w))
    return x if s == 1.0 else F.interpolate(x, scale_factor=s, mode="area",
                                            recompute_scale_factor=False)


def has_global_ops(model: nn.Module) -> bool:
    """Whether ``model`` has image-global operations (``tile_context``, instance norms, global
    pools) that tiled inference computes on the context frame."""
    return hasattr(model, "tile_context") or bool(GlobalStatistics(model))


def _capture_context(model: nn.Module, small: torch.Tensor,
                     frozen: GlobalStatistics) -> dict[str, Any]:
    """``model.tile_context(small)`` (the tiles' keyword arguments), and ``frozen`` captured on
    ``small``: after this, ``model(tile, **kwargs)`` inside ``frozen`` uses the context's global
    values."""
    kwargs = model.tile_context(small) if hasattr(model, "tile_context") else {}
    if frozen:
        frozen.capture(model, small, **kwargs)
    return kwargs


def _frame_context(model: nn.Module, x: torch.Tensor, frozen: GlobalStatistics,
                   context_size: int, dev: torch.device, tdtype) -> dict[str, Any]:
    """The keyword arguments of every tile's forward (``model.tile_context``) and the frozen
    global statistics, both from the frame downscaled to ``context_size``."""
    if not (hasattr(model, "tile_context") or frozen):
        return {}
    return _capture_context(model, context_frame(x, context_size).to(dev, tdtype), frozen)


class FrameContext(nn.Module):
    """``model`` as :func:`tiled_forward` runs it, in one traceable forward:
    ``forward(tile, context)`` computes the global operations (``tile_context``, instance-norm
    statistics, global pools; :class:`GlobalStatistics`) on ``context``, the whole frame
    downscaled by :func:`context_frame`, and applies them to ``tile``.

    Exported to ONNX (``isplab export``) it gives a graph with two inputs, ``input`` and
    ``context``, that develops tile by tile as the torch model does.
    """

    def __init__(self, model: nn.Module, context_size: int = CONTEXT_SIZE):
        super().__init__()
        self.model = model
        self.isplab_context_size = int(context_size)
        for key in ("isplab_name", "isplab_stride"):
            if hasattr(model, key):
                setattr(self, key, getattr(model, key))

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        frozen = GlobalStatistics(self.model)
        with frozen:
            kwargs = _capture_context(self.model, context, frozen)
            return self.model(x, **kwargs)


class _Canvas:
    """The blended output: tile outputs weighted by their windows, and the weights' sum."""

    def __init__(self, channels: int, h: int, w: int, scale: int, overlap: int):
        self.h, self.w, self.scale, self.overlap = h, w, scale, overlap
        self.out = torch.zeros(1, channels, h * scale, w * scale)
        self.acc = torch.zeros(1, 1, h * scale, w * scale, dtype=torch.float64)

    def add(self, y: torch.Tensor, y0: int, x0: int, th: int, tw: int) -> None:
        scale, overlap = self.scale, self.overlap
        wy = _ramp(th * scale, overlap * scale, y0 == 0, y0 + th == self.h)
        wx = _ramp(tw * scale, overlap * scale, x0 == 0, x0 + tw == self.w)
        win = (wy[:, None] * wx[None, :])[None, None]
        oy, ox = y0 * scale, x0 * scale
        self.out[..., oy:oy + th * scale, ox:ox + tw * scale] += y * win.float()
        self.acc[..., oy:oy + th * scale, ox:ox + tw * scale] += win

    def result(self, size) -> torch.Tensor:
        if float(self.acc.min()) <= 0:
            raise InvalidInputError("tiles do not cover the image (tile/overlap too small)")
        return (self.out / self.acc.float())[..., :size[0] * self.scale, :size[1] * self.scale]


def _run_tiles(model: nn.Module, x: torch.Tensor, kwargs: dict[str, Any], tile: int,
               overlap: int, scale: int | None, dev: torch.device, tdtype,
               progress: Callable[[int, int], None] | None) -> _Canvas | None:
    """Every tile through the model, blended into a canvas (None for an empty input)."""
    _, _, h, w = x.shape
    ys, xs = _starts(h, tile, tile - overlap), _starts(w, tile, tile - overlap)
    canvas = None
    total, done = len(ys) * len(xs), 0
    for y0 in ys:
        for x0 in xs:
            th, tw = min(tile, h - y0), min(tile, w - x0)
            part = x[:, :, y0:y0 + th, x0:x0 + tw].to(dev, tdtype)
            y = model(part, **kwargs).float().cpu()
            if scale is None:
                scale = y.shape[-1] // tw
            if y.shape[-2:] != (th * scale, tw * scale):
                raise InvalidInputError(f"the model gave {tuple(y.shape)} for a tile of "
                                        f"{th}x{tw}; expected {scale}x that size")
            if canvas is None:
                canvas = _Canvas(y.shape[1], h, w, scale, overlap)
            canvas.add(y, y0, x0, th, tw)
            done += 1
            if progress:
                progress(done, total)
    return canvas


def tiled_forward(
    model: nn.Module,
    x: torch.Tensor,
    tile: int | None = None,
    overlap: int = 32,
    device: str | torch.device = "auto",
    dtype: str = "float32",
    scale: int | None = None,
    context_size: int = CONTEXT_SIZE,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Run ``model`` over ``x`` (``1 x C x h x w``, on CPU) tile by tile.

    Args:
        model: maps ``1 x C x th x tw`` to ``1 x 3 x scale*th x scale*tw``.
        x: the whole input (packed raw for raw models); stays on the CPU.
        tile: tile side in input pixels (None: chosen from free memory).
        overlap: input pixels shared by neighbouring tiles (even).
        device: ``auto`` | ``cpu`` | ``cuda[:i]``.
        dtype: ``float32`` | ``bfloat16`` | ``float16`` (float16 on CUDA only).
        scale: output/input size ratio (None: measured on the first tile).
        context_size: longest side of the downscaled frame for ``model.tile_context``.
        progress: called with (tiles done, tiles total).

    Returns:
        ``1 x 3 x scale*h x scale*w`` float32 on the CPU.
    """
    dev = _check_request(x, dtype, overlap, device)
    tdtype = DTYPES[dtype]
    model = model.eval().to(dev, tdtype)
    # pad the frame as a whole-frame forward pads it (reflect, to the model's stride), so the
    # tiles at the bottom/right border see the same padding: no seam along the frame edge
    size = x.shape[-2:]
    multiple = _stride(model)
    if multiple > 1:
        from isplab.models.common import pad_to_multiple

        x, size = pad_to_multiple(x, multiple)
    frozen = GlobalStatistics(model)
    with torch.inference_mode(), frozen:
        kwargs = _frame_context(model, x, frozen, context_size, dev, tdtype)
        if tile is None:
            tile = auto_tile(model, kwargs, dev, tdtype, channels=x.shape[1])
        if tile <= overlap:
            raise InvalidInputError(f"tile ({tile}) must be larger than overlap ({overlap})")
        canvas = _run_tiles(model, x, kwargs, tile, overlap, scale, dev, tdtype, progress)
    if canvas is None:
        raise InvalidInputError("empty input")
    return canvas.result(size)
