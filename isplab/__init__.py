"""isplab: learned and classical image signal processors, raw Bayer in, sRGB out.

Conventions (see docs/ and DESIGN.md): tensors are ``N x C x H x W`` float32 in [0, 1];
packed raw is 4 channels in R, G1, G2, B order at half resolution whatever the sensor's
CFA; names say the colour space (``linear_rgb``, ``srgb``).
"""

__version__ = "0.1.0"

from isplab.errors import (  # noqa: E402
    InvalidInputError,
    IsplabError,
    RawReadError,
    UnsupportedCFAError,
)

__all__ = [
    "__version__",
    "IsplabError",
    "RawReadError",
    "UnsupportedCFAError",
    "InvalidInputError",
]
