"""Develop a raw file with a learned ISP: levels -> packed raw -> tiled model -> orientation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from isplab.errors import InvalidInputError
from isplab.infer.backends import OrtTiles, ort_session
from isplab.infer.tiled import CONTEXT_SIZE, tiled_forward
from isplab.models.weights import PACKAGE_WEIGHTS
from isplab.raw.image import RawImage
from isplab.raw.orientation import orient


@dataclass
class LearnedISP:
    """A zoo model (or an ONNX file run by onnxruntime) used as a raw developer.

    ``develop(raw)`` gives ``1 x 3 x H x W`` sRGB in [0, 1]: the raw is normalised with its
    black and white levels and packed to R, G1, G2, B (whatever its CFA), run tile by tile,
    and turned to the file's orientation. White balance and colour are the model's job (a
    model trained on unprocessed photos learns them from the raw's statistics).
    """

    model: nn.Module | None = None
    onnx: str | Path | None = None
    tile: int | None = None
    overlap: int | None = None
    device: str = "auto"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if (self.model is None) == (self.onnx is None):
            raise InvalidInputError("give either a model or an ONNX file")
        self._session = None
        if self.onnx is not None:
            self._session = _OnnxModel(self.onnx)

    def develop(self, raw: RawImage,
                progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
        packed = raw.packed().float().clamp(0, 1)
        if packed.shape[-1] < 2 or packed.shape[-2] < 2:
            raise InvalidInputError("raw image too small to develop", raw.path)
        model = self._session if self._session is not None else self.model
        tile = self.tile if self.tile is not None or self._session is None else ONNX_DEFAULT_TILE
        onnx = self._session is not None
        out = tiled_forward(model, packed, tile=tile, overlap=self._overlap(),
                            device="cpu" if onnx else self.device,
                            dtype="float32" if onnx else self.dtype,
                            context_size=self._session.context_size if onnx else CONTEXT_SIZE,
                            progress=progress)
        return orient(out.clamp(0, 1), raw.orientation)

    def postprocess(self, raw: RawImage, output_bps: int = 8) -> np.ndarray:
        """``develop`` as an ``H x W x 3`` uint8/uint16 array (as ``ClassicISP.postprocess``)."""
        from isplab.io import to_uint

        return to_uint(self.develop(raw), output_bps)


    def _overlap(self) -> int:
        """The given overlap, else the zoo model's ``tile_overlap`` (32 for ONNX files)."""
        if self.overlap is not None:
            return int(self.overlap)
        if self._session is not None:
            return self._session.tile_overlap
        name = getattr(self.model, "isplab_name", None)
        if name is None:
            return 32
        from isplab.models import model_entry

        return int(model_entry(name).tile_overlap)


#: ONNX files: tile side (packed pixels) when --tile is not given (onnxruntime's memory grows
#: with the largest tile it has run) and the stride assumed for files without metadata
ONNX_DEFAULT_TILE = 512
ONNX_DEFAULT_STRIDE = 32


class _OnnxModel(OrtTiles):
    """An ONNX file as a module for :func:`tiled_forward` (onnxruntime on CPU). A file with a
    ``context`` input (:mod:`isplab.models.export`) gets the downscaled frame the torch
    develop computes its global operations on."""

    def __init__(self, path: str | Path):
        super().__init__()
        try:
            import onnxruntime  # noqa: F401
        except ImportError as exc:
            raise InvalidInputError("--onnx needs onnxruntime: pip install -c constraints.txt "
                                    "-e '.[export]'") from exc
        path = Path(path)
        if not path.is_file():
            raise InvalidInputError("ONNX file not found", path)
        try:
            session = ort_session(str(path))
        except Exception as exc:
            raise InvalidInputError(f"not a loadable ONNX model ({exc})", path) from exc
        self._bind(session, path)
        shape = session.get_inputs()[0].shape
        self.fixed = tuple(shape[2:]) if all(isinstance(d, int) for d in shape[2:]) else None
        self.path = path
        meta = session.get_modelmeta().custom_metadata_map or {}
        # the zoo contract recorded at export; files without it: 32 is a multiple of every
        # zoo model's stride, so padding to it is always safe
        self.isplab_stride = int(meta.get("stride", ONNX_DEFAULT_STRIDE))
        self.tile_overlap = int(meta.get("tile_overlap", 32))
        self.context_size = int(meta.get("context_size", CONTEXT_SIZE))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        if self.fixed is not None and tuple(x.shape[2:]) != self.fixed:
            raise InvalidInputError(f"this ONNX model takes {self.fixed} tiles only; export "
                                    "it with --dynamic or develop with --tile equal to it",
                                    self.path)
        return self.run(x, context)


#: the blind kpn_isp shipped in the package (docs/models/kpn_isp_synth.md); ``--isp learned``
#: is the hybrid ISP (:mod:`isplab.infer.hybrid`)
KPN_WEIGHTS = PACKAGE_WEIGHTS / "kpn_isp.safetensors"


def learned_isp(isp: str, weights: str | Path | None = None, onnx: str | Path | None = None,
                **options) -> LearnedISP:
    """The developer behind ``isplab develop --isp ISP [--weights W | --onnx F]`` for a
    blind zoo model: ``isp`` is a zoo name (with ``weights``), or a weights file / training-run
    / checkpoint folder; ``onnx`` overrides both. (``--isp learned`` is the hybrid ISP,
    :func:`isplab.infer.hybrid.hybrid_isp`.)
    """
    from isplab.models import is_registered, resolve, weights_file

    if onnx is not None:
        return LearnedISP(onnx=onnx, **options)
    if is_registered(isp) and weights is None:
        raise InvalidInputError(f"--isp {isp} needs --weights FILE: an untrained model "
                                "develops noise, not a photo")
    if not is_registered(isp) and weights_file(isp) is None and not Path(isp).is_dir():
        raise InvalidInputError(f"unknown ISP {isp!r}: use classic, learned, a zoo name with "
                                "--weights (isplab models), or a weights file")
    return LearnedISP(model=resolve(isp, weights=weights), **options)


def develop_raw(raw: RawImage, model: nn.Module, **options) -> torch.Tensor:
    """Shorthand: ``LearnedISP(model, **options).develop(raw)``."""
    return LearnedISP(model=model, **options).develop(raw)
