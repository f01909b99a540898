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
from typing import TYPE_CHECKING

import numpy as np

from isplab.errors import InvalidInputError, IsplabError
from isplab.formats import OUTPUT_FORMATS  # noqa: F401  (re-exported)

if TYPE_CHECKING:  # torch is imported where a tensor is made: the classic path stays light
    import torch


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (temporaries named with a dead writer's pid are stale)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def atomic_write(path: str | Path, write: Callable[[str], None], overwrite: bool = False) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then move it onto
    ``path``: a failure or an interruption never leaves a half-written file, and an existing
    file is only replaced when ``overwrite`` (else FileExistsError).

    Without ``overwrite`` the finished file is *linked* into place, which fails if ``path``
    appeared meanwhile (a concurrent run): the no-overwrite rule holds at the moment of the
    rename, not only when it was checked. The temporary file is hidden, keeps ``path``'s
    suffix (some writers choose the format by it) and carries this process's id
    (``.<stem>.isplab-<pid>.*``) so a later run can remove it if this one is killed."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists (use --overwrite to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.isplab-{os.getpid()}.", suffix=path.suffix,
                               dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails with FileExistsError if a concurrent run won
            except FileExistsError:
                raise FileExistsError(f"{path} exists (written meanwhile by another run)") \
                    from None
            except OSError:  # a filesystem without hard links: check, then rename
                if path.exists():
                    raise FileExistsError(f"{path} exists (use --overwrite to replace it)") \
                        from None
                os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


#: how isplab signs the images it writes (PNG tEXt / TIFF Software / JPEG comment), so that
#: ``--overwrite`` replaces its own outputs only
SOFTWARE = "isplab"
_PNG_MARK = b"tEXtSoftware\x00" + SOFTWARE.encode()
_JPEG_MARK = b"\xff\xfe" + (len(SOFTWARE) + 2).to_bytes(2, "big") + SOFTWARE.encode()


def _signed(data: bytes, suffix: str) -> bytes:
    """An encoded PNG with a tEXt chunk after IHDR, or a JPEG with a COM segment after SOI,
    saying :data:`SOFTWARE` (other data unchanged)."""
    import zlib

    if suffix == ".png" and data[12:16] == b"IHDR":
        body = _PNG_MARK[4:]
        chunk = (len(body).to_bytes(4, "big") + _PNG_MARK
                 + zlib.crc32(_PNG_MARK).to_bytes(4, "big"))
        return b"".join((data[:33], chunk, data[33:]))  # 8 signature + 25 IHDR
    if suffix in (".jpg", ".jpeg") and data[:2] == b"\xff\xd8":
        return b"".join((data[:2], _JPEG_MARK, data[2:]))
    return data


def written_by_isplab(path: str | Path) -> bool:
    """True when ``path`` is an image isplab wrote (its signature, :data:`SOFTWARE`)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return _PNG_MARK in head
    if head[:2] == b"\xff\xd8":
        return head[2:2 + len(_JPEG_MARK)] == _JPEG_MARK
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        import tifffile

        try:
            with tifffile.TiffFile(path) as tif:
                tag = tif.pages[0].tags.get(305)
                return tag is not None and str(tag.value) == SOFTWARE
        except Exception:
            return False
    return False


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
    arr = np.asarray(image) if isinstance(image, np.ndarray) else to_uint(image, bits)

    def _write(tmp: str) -> None:
        if suffix in (".tif", ".tiff"):
            import tifffile

            tifffile.imwrite(tmp, arr, photometric="rgb", metadata=None, software=SOFTWARE)
        else:
            params = [cv2.IMWRITE_JPEG_QUALITY, quality] if suffix in (".jpg", ".jpeg") else []
            side = max(arr.shape[:2])
            if suffix in (".jpg", ".jpeg") and side > 65535:
                raise IsplabError(f"JPEG holds at most 65,535 pixels per side, this image "
                                  f"has {side}: use --format png or tiff", path)
            if side >= 1 << 20:
                raise IsplabError(f"OpenCV writes PNG/JPEG up to 1,048,575 pixels per side, "
                                  f"this image has {side}: use --format tiff", path)
            ok, encoded = cv2.imencode(suffix, np.ascontiguousarray(arr[..., ::-1]), params)
            if not ok:
                raise IsplabError(f"OpenCV could not write the {arr.shape[1]}x{arr.shape[0]} "
                                  f"{arr.dtype} image as {suffix}", path)
            with open(tmp, "wb") as f:  # encoded and signed in memory: written once
                f.write(_signed(encoded.tobytes(), suffix))

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
    import torch

    t = torch.from_numpy(np.ascontiguousarray(arr).astype(np.float32) / scale)
    return t.permute(2, 0, 1)[None].contiguous()
