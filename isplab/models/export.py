"""Export a zoo model to ONNX and TorchScript, and check the export against torch.

``export_onnx`` uses the TorchScript-based exporter (``dynamo=False``): it is fast, needs no
onnxscript, and handles every op the zoo uses (reflect pad, instance norm, pixel shuffle,
``unfold``). Install the ``export`` extra for onnx + onnxruntime.
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


def onnx_bytes(model: nn.Module, example: torch.Tensor, dynamic: bool = False) -> bytes:
    """The ONNX graph of ``model`` traced on ``example`` (eval mode), as bytes.

    ``dynamic=True`` makes batch, height and width symbolic (the model's own padding to its
    stride stays inside the graph).
    """
    _need("onnx")
    model = model.eval()
    axes = {"input": {0: "batch", 2: "height", 3: "width"},
            "output": {0: "batch", 2: "out_height", 3: "out_width"}} if dynamic else None
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's constant-folding chatter
        torch.onnx.export(
            model, (example,), buf, input_names=["input"], output_names=["output"],
            opset_version=OPSET, dynamic_axes=axes, dynamo=False,
        )
    return _with_metadata(buf.getvalue(), model)


def _with_metadata(data: bytes, model: nn.Module) -> bytes:
    """Record the zoo contract in the ONNX file (``isplab_name``, ``stride``,
    ``tile_overlap``, ``input_space``): tiled inference pads and overlaps an exported model
    as it does the torch one."""
    name = getattr(model, "isplab_name", None)
    if name is None:
        return data
    import onnx

    from isplab.models.registry import is_registered, model_entry

    if not is_registered(name):
        return data
    entry = model_entry(name)
    proto = onnx.load_from_string(data)
    for key, value in (("isplab_name", name), ("stride", entry.stride),
                       ("tile_overlap", entry.tile_overlap),
                       ("input_space", entry.input_space)):
        prop = proto.metadata_props.add()
        prop.key, prop.value = key, str(value)
    return proto.SerializeToString()


def export_onnx(
    model: nn.Module, path: str | Path, example: torch.Tensor, dynamic: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write ``model`` as ONNX to ``path`` (atomically) and return the path."""
    data = onnx_bytes(model, example, dynamic)
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data), overwrite=overwrite)


def export_torchscript(
    model: nn.Module, path: str | Path, example: torch.Tensor, overwrite: bool = False
) -> Path:
    """Write a traced TorchScript module (``torch.jit.load``-able) to ``path``."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's warnings about Python-level branches
        traced = torch.jit.trace(model.eval(), (example,), check_trace=False)
    return atomic_write(path, lambda tmp: traced.save(tmp), overwrite=overwrite)


def run_onnx(model_bytes_or_path: bytes | str | Path, x: torch.Tensor) -> torch.Tensor:
    """Run an ONNX model with onnxruntime on CPU and return the output as a tensor."""
    _need("onnxruntime")
    import onnxruntime as ort

    src = model_bytes_or_path
    if isinstance(src, Path):
        src = str(src)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    out = sess.run(None, {name: x.detach().cpu().numpy().astype(np.float32)})[0]
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
