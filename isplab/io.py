"""Reading and writing developed images (8/16-bit PNG, TIFF, JPEG).

16-bit PNG goes through OpenCV (Pillow cannot write 16-bit RGB PNG and reads it back as
8-bit), TIFF through tifffile. Writes are atomic (temporary file + rename) and never replace
an existing file unless asked.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from isplab.errors import InvalidInputError, IsplabError

OUTPUT_FORMATS = {"png": ".png", "tiff": ".tiff", "jpg": ".jpg"}


def atomic_write(path: str | Path, write: Callable[[str], None], overwrite: bool = False) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it onto
    ``path``: a failure or an interruption never leaves a half-written file, and an existing
    file is only replaced when ``overwrite`` (else FileExistsError). The temporary file keeps
    ``path``'s suffix (some writers choose the format by it)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists (use --overwrite to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def to_uint(image: torch.Tensor, bits: int = 8) -> np.ndarray:
    """``3 x H x W`` (or ``1 x 3 x H x W``) tensor in [0, 1] -> ``H x W x 3`` uint8/uint16."""
    if bits not in (8, 16):
        raise InvalidInputError(f"bits must be 8 or 16, got {bits}")
    if image.ndim == 4:
        if image.shape[0] != 1:
            raise InvalidInputError(f"expected one image, got a batch of {image.shape[0]}")
        image = image[0]
    if image.ndim != 3 or image.shape[0] != 3:
        raise InvalidInputError(f"expected a 3 x H x W image, got {tuple(image.shape)}")
    maxv = 255.0 if bits == 8 else 65535.0
    arr = (image.detach().float().clamp(0, 1) * maxv + 0.5).floor().permute(1, 2, 0).numpy()
    return arr.astype(np.uint8 if bits == 8 else np.uint16)


def write_image(
    path: str | Path, image: torch.Tensor | np.ndarray, bits: int = 8, quality: int = 95,
    overwrite: bool = False,
) -> Path:
    """Write an RGB image; the format follows the suffix (``.png``, ``.tif(f)``, ``.jpg``).

    Args:
        image: ``3 x H x W`` / ``1 x 3 x H x W`` float tensor in [0, 1], or an ``H x W x 3``
            uint8/uint16 array.
        bits: 8 or 16 (JPEG is 8-bit only).
        quality: JPEG quality.
        overwrite: replace an existing file (otherwise FileExistsError).
    """
    import cv2

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".tif", ".tiff", ".jpg", ".jpeg"):
        raise InvalidInputError(f"unsupported output format {suffix!r} (png, tiff, jpg)")
    if suffix in (".jpg", ".jpeg") and bits != 8:
        raise InvalidInputError("JPEG is 8-bit only: use png or tiff for 16-bit output")
    arr = to_uint(image, bits) if isinstance(image, torch.Tensor) else np.asarray(image)

    def _write(tmp: str) -> None:
        if suffix in (".tif", ".tiff"):
            import tifffile

            tifffile.imwrite(tmp, arr, photometric="rgb", metadata=None)
        else:
            params = [cv2.IMWRITE_JPEG_QUALITY, quality] if suffix in (".jpg", ".jpeg") else []
            if not cv2.imwrite(tmp, np.ascontiguousarray(arr[..., ::-1]), params):
                raise IsplabError("OpenCV could not write the image", path)

    return atomic_write(path, _write, overwrite)


def read_image(path: str | Path) -> torch.Tensor:
    """Read an 8/16-bit RGB image (PNG, TIFF, JPEG...) -> ``1 x 3 x H x W`` float32 in [0, 1].

    Grey images are repeated to 3 channels; an alpha channel is dropped.
    """
    import cv2

    path = Path(path)
    if not path.is_file():
        raise IsplabError("no such file", path)
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        arr = tifffile.imread(path)
    else:
        arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if arr is None:
            raise IsplabError("not a readable image", path)
        if arr.ndim == 3:
            arr = arr[..., 2::-1] if arr.shape[2] >= 3 else arr
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    arr = arr[..., :3]
    if arr.dtype == np.uint8:
        scale = 255.0
    elif arr.dtype == np.uint16:
        scale = 65535.0
    elif arr.dtype.kind == "f":
        scale = 1.0
    else:
        raise IsplabError(f"unsupported image dtype {arr.dtype}", path)
    t = torch.from_numpy(np.ascontiguousarray(arr).astype(np.float32) / scale)
    return t.permute(2, 0, 1)[None].contiguous()
