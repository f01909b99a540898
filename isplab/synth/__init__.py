"""Synthetic raw from ordinary photos: unprocessing (Brooks et al. 2019), sensor noise,
low light and quantisation, and a writer of (raw, sRGB) training pairs.

- :func:`unprocess` / :func:`process`: sRGB -> linear camera raw -> sRGB, with a camera
  (colour matrix, gains) sampled per image (:func:`sample_params`, :class:`UnprocessParams`).
- :func:`degrade`: low light (``/ k``), heteroscedastic Gaussian noise, clip, quantisation.
- :func:`synthesize_dataset`: the ``isplab synth`` writer (``raw/``, ``rgb/``, ``meta/``).

See docs/synth.md.
"""

from isplab.synth.noise import (
    add_noise,
    default_black_level,
    degrade,
    noise_level_map,
    quantize,
    sample_noise_params,
    simulate_low_light,
)
from isplab.synth.unprocess import (
    XYZ_TO_CAMS,
    UnprocessParams,
    process,
    random_ccm,
    roundtrip_mask,
    sample_params,
    unprocess,
)
from isplab.synth.writer import synthesize_dataset, synthesize_pair

__all__ = [
    "XYZ_TO_CAMS", "UnprocessParams", "add_noise", "default_black_level", "degrade",
    "noise_level_map", "process", "quantize", "random_ccm", "roundtrip_mask",
    "sample_noise_params", "sample_params", "simulate_low_light", "synthesize_dataset",
    "synthesize_pair", "unprocess",
]
