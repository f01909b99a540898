"""The hybrid ISP: the classical pipeline with a learned joint demosaic + denoise stage.

::

    RawImage -> levels -> noise profile (DNG tag | estimated | --noise) -> white balance
      (camera | auto | profile) -> jdd_net (WB'd packed raw + noise map -> linear camera RGB,
      tiled) -> colour matrix (metadata | profile) -> brightness, tone -> sRGB

Everything the file's metadata knows stays parametric (:class:`~isplab.classic.ClassicISP`);
the learned stage (:class:`LearnedDemosaic`) is plugged into it as its ``demosaicker``; on
the CPU it runs through onnxruntime when installed (2.5-3x torch here,
:mod:`isplab.infer.backends`), else torch with ``channels_last``. This
is ``isplab develop --isp learned`` and ``--demosaic learned``, and ``classic:learned`` in
``isplab evaluate``.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from isplab.errors import InvalidInputError
from isplab.infer.tiled import tiled_forward
from isplab.models.weights import PACKAGE_WEIGHTS
from isplab.raw.cfa import check_pattern, pack, packed_offsets

#: the shipped jdd_net weights (docs/models/jdd_net.md)
JDD_WEIGHTS = PACKAGE_WEIGHTS / "jdd_net.safetensors"


def _gains4(gains, n: int) -> torch.Tensor:
    """(R, G, B) gains (or None) -> ``N x 4`` packed-channel gains R, G1, G2, B."""
    if gains is None:
        return torch.ones(n, 4)
    g = torch.as_tensor(gains, dtype=torch.float32).reshape(-1, 3).expand(n, 3)
    return torch.stack([g[:, 0], g[:, 1], g[:, 1], g[:, 2]], 1)


class LearnedDemosaic:
    """A ``jdd_net`` (or any ``packed_raw_noise -> linear_rgb`` zoo model) as the
    ``demosaicker`` of :class:`~isplab.classic.ClassicISP`.

    The white-balanced mosaic is brought to the RGGB phase by mirroring one row/column at
    the top/left when the CFA starts elsewhere (a mirror keeps the Bayer phase of the
    neighbours), packed, given its noise map (the profile scaled by the gains), run tile by
    tile, and cropped back to the mosaic's pixels.

    ``backend``: ``auto`` (onnxruntime on the CPU in float32 when installed, else torch:
    :mod:`isplab.infer.backends`), ``torch`` or ``onnxruntime``. The onnxruntime session
    is built on the first call and kept: one export per process, whatever the file count.
    """

    def __init__(self, model: nn.Module, tile: int | None = None, overlap: int | None = None,
                 device: str = "auto", dtype: str = "float32", backend: str = "auto"):
        from isplab.infer.backends import choose_backend
        from isplab.infer.tiled import resolve_device
        from isplab.models import model_entry

        name = getattr(model, "isplab_name", None)
        entry = model_entry(name) if name else None
        if entry is None or entry.input_space != "packed_raw_noise" or \
                entry.output_space != "linear_rgb":
            raise InvalidInputError(f"{name or type(model).__name__} is not a demosaic + "
                                    "denoise model (packed raw + noise map -> linear RGB, "
                                    "e.g. jdd_net)")
        self.model = model.eval()
        self.tile, self.device, self.dtype = tile, device, dtype
        self.overlap = int(entry.tile_overlap if overlap is None else overlap)
        self.backend = choose_backend(backend, resolve_device(device), dtype)
        self._runner: nn.Module | None = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_runner"] = None  # an onnxruntime session does not pickle: rebuilt on use
        return state

    def runner(self) -> nn.Module:
        """The module the tiles run through: the torch model (``channels_last`` on the
        CPU) or its onnxruntime session, built once."""
        if self._runner is None:
            if self.backend == "onnxruntime":
                from isplab.infer.backends import OnnxRuntimeModule

                self._runner = OnnxRuntimeModule(self.model, channels=8)
            else:
                from isplab.infer.tiled import resolve_device

                if resolve_device(self.device).type == "cpu":  # 1.5x faster here
                    self.model.to(memory_format=torch.channels_last)
                self._runner = self.model
        return self._runner

    def _tile(self) -> int | None:
        """The tile side: the given one, else onnxruntime's default (a multiple of the
        stride), else None (torch: from free memory)."""
        if self.tile is not None or self.backend != "onnxruntime":
            return self.tile
        from isplab.infer.backends import ORT_TILE

        return ORT_TILE

    def __call__(self, mosaic: torch.Tensor, cfa: str, gains, noise) -> torch.Tensor:
        n, _, h, w = mosaic.shape
        cfa = check_pattern(cfa)
        ry, rx = packed_offsets(cfa)[0]  # where the red sample of the 2x2 block is
        pad_b, pad_r = (h + ry) % 2, (w + rx) % 2
        m = F.pad(mosaic, (rx, pad_r, ry, pad_b), mode="reflect") if ry or rx or pad_b \
            or pad_r else mosaic
        packed = pack(m, "RGGB")
        g4 = _gains4(gains, n).to(packed)
        shot, read = (0.0, 0.0) if noise is None else (float(noise.shot), float(noise.read))
        # y = g x with var(x) = shot x + read: var(y) = g shot y + g^2 read
        std = (packed.clamp(min=0) * g4[:, :, None, None] * shot
               + (g4 * g4)[:, :, None, None] * read).sqrt()
        outs = []
        for i in range(n):
            x = torch.cat([packed[i:i + 1], std[i:i + 1]], 1)
            outs.append(tiled_forward(self.runner(), x, tile=self._tile(),
                                      overlap=self.overlap, device=self.device,
                                      dtype=self.dtype))
        rgb = torch.cat(outs, 0)
        return rgb[..., ry:ry + h, rx:rx + w].clamp_(0.0, 1.0)


def load_jdd(weights: str | Path | None = None) -> nn.Module:
    """The learned stage: ``weights`` (a jdd_net file or run folder) or the shipped one."""
    from isplab.models import resolve

    if weights is None:
        if not JDD_WEIGHTS.is_file():
            raise InvalidInputError("no jdd_net weights are installed in this copy of isplab: "
                                    "train them (isplab train configs/jdd_synth.yaml) and pass "
                                    "--weights runs/jdd_synth", JDD_WEIGHTS)
        weights = JDD_WEIGHTS
    return resolve(weights)


def learned_demosaic(weights: str | Path | None = None, tile: int | None = None,
                     overlap: int | None = None, device: str = "auto",
                     dtype: str = "float32", backend: str = "auto") -> LearnedDemosaic:
    """The ``demosaicker`` for ``ClassicISP(demosaicker=...)`` from a weights file (or the
    shipped jdd_net)."""
    return LearnedDemosaic(load_jdd(weights), tile=tile, overlap=overlap, device=device,
                           dtype=dtype, backend=backend)


def hybrid_isp(weights: str | Path | None = None, *, tile: int | None = None,
               overlap: int | None = None, device: str = "auto", dtype: str = "float32",
               backend: str = "auto", **classic_options):
    """``isplab develop --isp learned``: :class:`~isplab.classic.ClassicISP` with
    ``classic_options`` (white balance, tone, gamma, ``noise``...) and the learned stage
    (``backend``: :class:`LearnedDemosaic`)."""
    from isplab.classic import ClassicISP

    stage = learned_demosaic(weights, tile=tile, overlap=overlap, device=device, dtype=dtype,
                             backend=backend)
    classic_options.pop("demosaic_algorithm", None)
    return ClassicISP(demosaicker=stage, **classic_options)
