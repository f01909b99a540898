"""Where a learned stage runs on the CPU: torch, or onnxruntime on the same weights.

The shipped ``jdd_net`` runs 2.5-3x faster through onnxruntime than through torch on this
project's 2-core CPU (docs/benchmarks.md, "The learned stage"; outputs agree to > 50 dB), so
``backend="auto"`` takes onnxruntime on the CPU in float32 when it is installed (the
``export`` extra) and torch otherwise (CUDA, bfloat16/float16, no onnxruntime). The model is
exported to ONNX in memory once per process (about a second) from the torch weights: no
file to keep in step with the weights.

``ISPLAB_BACKEND=torch`` (or ``onnxruntime``) in the environment overrides ``auto``.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from isplab.errors import InvalidInputError

BACKENDS = ("auto", "torch", "onnxruntime")
#: the environment variable read when the backend is ``auto``
BACKEND_ENV = "ISPLAB_BACKEND"
#: onnxruntime's tile side (packed pixels) when none is given: its memory arena grows with
#: the largest tile it has run; 768 covers a 12 MP frame (1500 x 2000 packed) in 2 x 3 tiles
ORT_TILE = 768


def onnxruntime_available() -> bool:
    """onnx (the exporter's graph) and onnxruntime are both importable."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))


def choose_backend(backend: str, device: torch.device, dtype: str) -> str:
    """``torch`` or ``onnxruntime`` for ``backend`` (``auto`` | ``torch`` | ``onnxruntime``)
    on ``device`` in ``dtype``; ``auto`` reads :data:`BACKEND_ENV` first.

    Raises:
        InvalidInputError: an unknown backend, or onnxruntime asked for where it cannot run.
    """
    if backend == "auto":
        backend = os.environ.get(BACKEND_ENV, "").strip().lower() or "auto"
    if backend not in BACKENDS:
        raise InvalidInputError(f"backend must be one of {', '.join(BACKENDS)}, got "
                                f"{backend!r}")
    fits = device.type == "cpu" and dtype == "float32"
    if backend == "auto":
        return "onnxruntime" if fits and onnxruntime_available() else "torch"
    if backend == "onnxruntime":
        if not fits:
            raise InvalidInputError("the onnxruntime backend runs float32 on the CPU only")
        if not onnxruntime_available():
            raise InvalidInputError("the onnxruntime backend needs onnx and onnxruntime: "
                                    "pip install -c constraints.txt -e '.[export]'")
    return backend


class OnnxRuntimeModule(nn.Module):
    """A torch zoo model exported to ONNX in memory and run by onnxruntime on the CPU, as a
    module for :func:`~isplab.infer.tiled.tiled_forward` (it keeps the model's name and
    stride, so the frame is padded as for the torch model).

    Inputs whose sides are not multiples of the stride are padded here (reflect) and the
    output cropped: the traced graph has no shape-dependent padding of its own.
    """

    def __init__(self, model: nn.Module, channels: int, threads: int | None = None):
        super().__init__()
        import onnxruntime as ort

        from isplab.infer.tiled import _stride
        from isplab.models.export import onnx_bytes

        self.isplab_stride = _stride(model)
        self.isplab_name = getattr(model, "isplab_name", None)
        side = 16 * self.isplab_stride
        data = onnx_bytes(model.eval(), torch.zeros(1, channels, side, side), dynamic=True)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.intra_op_num_threads = int(threads or torch.get_num_threads())
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from isplab.models.common import crop_to, pad_to_multiple

        x, size = pad_to_multiple(x, self.isplab_stride)
        y = self.session.run(None, {self.input_name: x.float().contiguous().numpy()})[0]
        y = torch.from_numpy(y)
        return crop_to(y, size, y.shape[-1] // x.shape[-1])
