"""Weights files and their model records, read without torch.

The model record saved with a weights file (its sidecar JSON, else the ``isplab`` entry of the
safetensors header) and the files installed for a model are what ``isplab models`` shows; it
lists the zoo from ``isplab/models/manifest.json`` and these functions, so it starts without
importing torch. :mod:`isplab.models.weights` re-exports them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from isplab.errors import InvalidInputError

#: the weights shipped in the package
PACKAGE_WEIGHTS = Path(__file__).resolve().parent / "weights"
#: the zoo's ``model_info`` of every model (``isplab.models.registry.write_manifest``)
MANIFEST = Path(__file__).resolve().parent / "models" / "manifest.json"


def sidecar_path(path: str | Path) -> Path:
    """``model.safetensors`` -> ``model.json``."""
    return Path(path).with_suffix(".json")


def read_weights_meta(path: str | Path) -> dict[str, Any]:
    """The model record saved with a weights file (sidecar JSON, else the safetensors header).

    The record is data: a JSON object whose ``name`` and ``config`` are only ever looked up in
    the registry (:func:`isplab.models.load_model`). Raises InvalidInputError when it is
    unreadable.
    """
    path = Path(path)
    side = sidecar_path(path)
    try:
        if side.is_file():
            text, where = side.read_text(), side
        else:
            from safetensors import safe_open

            with safe_open(str(path), framework="numpy") as f:
                text, where = (f.metadata() or {}).get("isplab", "{}"), path
        meta = json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidInputError(f"unreadable model record ({exc})", path) from exc
    except Exception as exc:  # safetensors' own error types
        raise InvalidInputError(f"not a readable safetensors file ({exc})", path) from exc
    if not isinstance(meta, dict):
        raise InvalidInputError("the model record is not a JSON object", where)
    return meta


def installed_weights(name: str) -> list[Path]:
    """Weights files for ``name`` in the package's ``isplab/weights/`` and in
    ``$ISPLAB_WEIGHTS_DIR``: files whose recorded model name (JSON sidecar or safetensors
    header) is ``name``, or, without a record, whose file name starts with it."""
    dirs = [PACKAGE_WEIGHTS]
    if os.environ.get("ISPLAB_WEIGHTS_DIR"):
        dirs.append(Path(os.environ["ISPLAB_WEIGHTS_DIR"]))
    found: list[Path] = []
    for d in dirs:
        if not d.is_dir():
            continue
        for p in sorted(d.glob("*.safetensors")):
            try:
                recorded = read_weights_meta(p).get("name")
            except Exception:  # unreadable file: judge by its name
                recorded = None
            if recorded == name or (recorded is None and
                                    (p.stem == name or p.stem.startswith(f"{name}_"))):
                found.append(p)
    return found
