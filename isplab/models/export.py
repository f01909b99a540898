"""Export a zoo model to ONNX and TorchScript, and check the export against torch.

``export_onnx`` uses the TorchScript-based exporter (``dynamo=False``): it is fast, needs no
onnxscript, and handles every op the zoo uses (reflect pad, instance norm, pixel shuffle,
``unfold``). Install the ``export`` extra for onnx + onnxruntime.

The input contract of an exported file (``isplab export``):

- ``input``: a tile of the (packed) frame, ``1 x C x th x tw``, sides multiples of the
  ``stride`` recorded in the file's metadata (the whole frame is reflect-padded to it first);
- ``context`` (models with image-global operations only, e.g. kpn_isp's pooled colour
  matrix, instance norms, DeepISP's global transform): the whole padded frame area-downscaled
  so its longest side is the recorded ``context_size`` (512), then reflect-padded to a multiple
  of ``stride``. The graph computes the global values from it and applies them to the tile, so
  every tile of a frame gets the same colour, as in the torch develop
  (:func:`isplab.infer.tiled.tiled_forward`). Its height and width are always free.
- ``output``: the developed tile, ``1 x 3 x s*th x s*tw``.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from isplab.errors import InvalidInputError
from isplab.io import atomic_write

OPSET = 17


def _need(module: str) -> None:
    try:
        __import__(module)
    except ImportError as exc:
        raise InvalidInputError(
            f"ONNX export needs {module}: pip install -c constraints.txt -e '.[export]'"
        ) from exc


#: the name of the second graph input of a model with global operations
CONTEXT_INPUT = "context"


def onnx_bytes(model: nn.Module, example: torch.Tensor, dynamic: bool = False,
               context: torch.Tensor | None = None) -> bytes:
    """The ONNX graph of ``model`` traced on ``example`` (eval mode), as bytes.

    ``dynamic=True`` makes batch, height and width symbolic (the model's own padding to its
    stride stays inside the graph). With ``context``, ``model`` is called as
    ``model(example, context)`` and the graph has a second input named ``context``
    (:data:`CONTEXT_INPUT`) whose height and width are always symbolic.
    """
    _need("onnx")
    model = model.eval()
    names = ["input"] if context is None else ["input", CONTEXT_INPUT]
    args = (example,) if context is None else (example, context)
    axes = {"input": {0: "batch", 2: "height", 3: "width"},
            "output": {0: "batch", 2: "out_height", 3: "out_width"}} if dynamic else {}
    if context is not None:
        axes[CONTEXT_INPUT] = {0: "batch", 2: "context_height", 3: "context_width"}
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's constant-folding chatter
        torch.onnx.export(
            model, args, buf, input_names=names, output_names=["output"],
            opset_version=OPSET, dynamic_axes=axes or None, dynamo=False,
        )
    return _with_metadata(buf.getvalue(), model)


def _with_metadata(data: bytes, model: nn.Module) -> bytes:
    """Record the zoo contract in the ONNX file (``isplab_name``, ``stride``,
    ``tile_overlap``, ``input_space``, and ``context_size`` for a graph with a ``context``
    input): tiled inference pads and overlaps an exported model as it does the torch one."""
    name = getattr(model, "isplab_name", None)
    if name is None:
        return data
    import onnx

    from isplab.models.registry import is_registered, model_entry

    if not is_registered(name):
        return data
    entry = model_entry(name)
    proto = onnx.load_from_string(data)
    items = [("isplab_name", name), ("stride", entry.stride),
             ("tile_overlap", entry.tile_overlap), ("input_space", entry.input_space)]
    if getattr(model, "isplab_context_size", None) is not None:
        items.append(("context_size", model.isplab_context_size))
    for key, value in items:
        prop = proto.metadata_props.add()
        prop.key, prop.value = key, str(value)
    return proto.SerializeToString()


def export_onnx(
    model: nn.Module, path: str | Path, example: torch.Tensor, dynamic: bool = False,
    overwrite: bool = False, context: torch.Tensor | None = None,
) -> Path:
    """Write ``model`` as ONNX to ``path`` (atomically) and return the path (``context``:
    see :func:`onnx_bytes`)."""
    data = onnx_bytes(model, example, dynamic, context)
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data), overwrite=overwrite)


def export_torchscript(
    model: nn.Module, path: str | Path, example: torch.Tensor, overwrite: bool = False
) -> Path:
    """Write a traced TorchScript module (``torch.jit.load``-able) to ``path``."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's warnings about Python-level branches
        traced = torch.jit.trace(model.eval(), (example,), check_trace=False)
    return atomic_write(path, lambda tmp: traced.save(tmp), overwrite=overwrite)


def run_onnx(model_bytes_or_path: bytes | str | Path, x: torch.Tensor,
             context: torch.Tensor | None = None) -> torch.Tensor:
    """Run an ONNX model with onnxruntime on CPU and return the output as a tensor
    (``context``: the second input of a graph that has one)."""
    _need("onnxruntime")
    import onnxruntime as ort

    src = model_bytes_or_path
    if isinstance(src, Path):
        src = str(src)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])
    inputs = [i.name for i in sess.get_inputs()]
    feed = {inputs[0]: x.detach().cpu().numpy().astype(np.float32)}
    if context is not None:
        feed[CONTEXT_INPUT] = context.detach().cpu().numpy().astype(np.float32)
    out = sess.run(None, feed)[0]
    return torch.from_numpy(out)


def onnx_max_error(model: nn.Module, x: torch.Tensor, dynamic: bool = False) -> float:
    """Export ``model`` on ``x``, run it in onnxruntime, return max |onnx - torch|."""
    model = model.eval()
    with torch.no_grad():
        ref = model(x)
    out = run_onnx(onnx_bytes(model, x, dynamic), x)
    if out.shape != ref.shape:
        raise AssertionError(f"onnx output {tuple(out.shape)} vs torch {tuple(ref.shape)}")
    return float((out - ref).abs().max())
