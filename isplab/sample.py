"""A built-in sample raw: a bundled photo turned into a realistic 12-bit Bayer DNG.

The repository carries no third-party raws, so the sample is made from scikit-image's
bundled ``astronaut`` photo (public domain, NASA): sRGB -> linear -> camera colour space
(inverse of a real camera's colour matrix) -> inverse white balance -> RGGB mosaic ->
shot and read noise -> 12-bit with a black level. The full unprocessing (tone curve,
random matrices, highlight protection) lives in ``isplab.synth``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from isplab.classic.color import camera_to_srgb_from_xyz
from isplab.classic.tone import srgb_to_linear
from isplab.raw.cfa import mosaic
from isplab.raw.dng import write_dng
from isplab.raw.image import RawImage

SAMPLE_NAME = "isplab_sample_astronaut.dng"
#: the DNG's UniqueCameraModel tag ("<make> <model>")
SAMPLE_MODEL = "isplab sample (astronaut)"

#: Canon EOS 5D Mark II XYZ (D65) -> camera matrix, from dcraw's adobe_coeff table (x 1e-4).
XYZ_TO_CAMERA_5D2 = np.array(
    [[4716, 603, -830], [-7798, 15474, 2480], [-1496, 1937, 6651]], dtype=np.float64
) / 10000.0

#: As-shot gains of a daylight scene on such a camera (R, G, B).
SAMPLE_WB = (2.1, 1.0, 1.55)


def sample_photo() -> np.ndarray:
    """The bundled sRGB photo, ``H x W x 3`` uint8 (scikit-image's astronaut, offline)."""
    try:
        from skimage import data
    except ImportError as exc:  # pragma: no cover - scikit-image is a dependency
        raise ImportError("the built-in sample needs scikit-image (pip install scikit-image)") \
            from exc
    return data.astronaut()


def make_sample_raw(seed: int = 0, black: int = 256, white: int = 4095,
                    exposure: float = 0.7) -> RawImage:
    """Build the sample as a :class:`RawImage` (deterministic for a given seed)."""
    srgb = torch.from_numpy(sample_photo()).permute(2, 0, 1)[None].float() / 255.0
    linear = srgb_to_linear(srgb)
    cam_to_srgb = camera_to_srgb_from_xyz(XYZ_TO_CAMERA_5D2)
    srgb_to_cam = torch.from_numpy(np.linalg.inv(cam_to_srgb)).float()
    cam = torch.einsum("ij,njhw->nihw", srgb_to_cam, linear).clamp(0, 1)
    gains = torch.tensor(SAMPLE_WB, dtype=torch.float32)[None, :, None, None]
    cam = cam / gains * exposure
    m = mosaic(cam, "RGGB")[0, 0].numpy().astype(np.float64)
    rng = np.random.default_rng(seed)
    span = white - black
    electrons = m * span  # one electron per DN: shot noise variance = signal
    noisy = rng.poisson(np.clip(electrons, 0, None)) + rng.normal(0, 2.0, m.shape) + black
    ints = np.clip(np.rint(noisy), 0, white)
    norm = np.clip((ints - black) / span, 0, 1)
    return RawImage(
        mosaic=norm.astype(np.float32), cfa="RGGB", black_level=black, white_level=white,
        wb_gains=SAMPLE_WB, xyz_to_camera=XYZ_TO_CAMERA_5D2, bit_depth=12,
        extra={"source": "scikit-image astronaut (NASA, public domain), made raw by isplab"},
    )


def is_sample(path: str | Path) -> bool:
    """True when ``path`` is a DNG written by :func:`write_sample` (its camera-model tag;
    reads the header only)."""
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            tag = tif.pages[0].tags.get(50708)  # UniqueCameraModel
            return tag is not None and str(tag.value) == SAMPLE_MODEL
    except Exception:
        return False


def write_sample(directory: str | Path) -> tuple[Path, bool]:
    """Write the sample DNG into ``directory``; returns ``(path, written)``: an existing
    sample is reused (``written`` False). A different file of that name is never developed or
    replaced: InvalidInputError names it."""
    from isplab.errors import InvalidInputError

    path = Path(directory) / SAMPLE_NAME
    if path.exists():
        if not is_sample(path):
            raise InvalidInputError("exists and is not isplab's sample raw: not developed "
                                    "(move it away, or use another output folder)", path)
        return path, False
    write_dng(path, make_sample_raw(), make="isplab", model=SAMPLE_MODEL.split(" ", 1)[1])
    return path, True
