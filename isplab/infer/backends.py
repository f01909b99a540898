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


def ort_session(src: bytes | str, threads: int | None = None):
    """An onnxruntime CPU session on an ONNX file or its bytes (quiet; ``threads`` intra-op
    threads, onnxruntime's default when None)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads is not None:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])


class OrtTiles(nn.Module):
    """An onnxruntime session as a module for :func:`~isplab.infer.tiled.tiled_forward`.

    A graph with a second input named ``context`` (a model with global operations, exported
    through :class:`~isplab.infer.tiled.FrameContext`) gets it from :meth:`tile_context`:
    ``tiled_forward`` calls that once with the downscaled frame it makes for the torch model
    (:func:`~isplab.infer.tiled.context_frame`), and every tile is run with it. Subclasses set
    ``isplab_stride`` before calling :meth:`_bind`.
    """

    isplab_stride = 1

    def _bind(self, session, what: object = "the ONNX model") -> None:
        from isplab.models.export import CONTEXT_INPUT

        self.session = session
        inputs = session.get_inputs()
        self.input_name = inputs[0].name
        names = [i.name for i in inputs[1:]]
        if names not in ([], [CONTEXT_INPUT]):
            raise InvalidInputError(f"{what} has inputs {[inputs[0].name, *names]}; isplab runs "
                                    f"graphs with one input, or two (the second named "
                                    f"{CONTEXT_INPUT!r})")
        self.context_name = names[0] if names else None

    def tile_context(self, small: torch.Tensor) -> dict[str, torch.Tensor]:
        """The tiles' keyword arguments for the downscaled frame ``small``: ``{"context":
        small padded to the stride}`` (as the torch model pads it), or none for a
        single-input graph."""
        if self.context_name is None:
            return {}
        from isplab.models.common import pad_to_multiple

        return {"context": pad_to_multiple(small.float(), self.isplab_stride)[0]}

    def run(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """The graph's output for ``x`` (and ``context``, which a two-input graph needs)."""
        feed = {self.input_name: x.float().contiguous().numpy()}
        if self.context_name is not None:
            if context is None:
                from isplab.models.export import CONTEXT_INPUT

                raise InvalidInputError(f"this ONNX model takes a second input, "
                                        f"{CONTEXT_INPUT!r}: the whole frame downscaled "
                                        "(run it through tiled_forward)")
            feed[self.context_name] = context.float().contiguous().numpy()
        return torch.from_numpy(self.session.run(None, feed)[0])


class OnnxRuntimeModule(OrtTiles):
    """A torch zoo model exported to ONNX in memory and run by onnxruntime on the CPU, as a
    module for :func:`~isplab.infer.tiled.tiled_forward` (it keeps the model's name and
    stride, so the frame is padded as for the torch model; a model with global operations is
    exported with its ``context`` input, so they are computed on the frame as by torch).

    Inputs whose sides are not multiples of the stride are padded here (reflect) and the
    output cropped: the traced graph has no shape-dependent padding of its own.
    """

    def __init__(self, model: nn.Module, channels: int, threads: int | None = None):
        super().__init__()
        from isplab.infer.tiled import FrameContext, _stride, has_global_ops
        from isplab.models.export import onnx_bytes

        self.isplab_stride = _stride(model)
        self.isplab_name = getattr(model, "isplab_name", None)
        side = 16 * self.isplab_stride
        example = torch.zeros(1, channels, side, side)
        model = model.eval()
        if has_global_ops(model):
            data = onnx_bytes(FrameContext(model), example, dynamic=True, context=example)
        else:
            data = onnx_bytes(model, example, dynamic=True)
        self._bind(ort_session(data, threads or torch.get_num_threads()))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        from isplab.models.common import crop_to, pad_to_multiple

        x, size = pad_to_multiple(x, self.isplab_stride)
        y = self.run(x, context)
        return crop_to(y, size, y.shape[-1] // x.shape[-1])
