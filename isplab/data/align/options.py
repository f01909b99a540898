"""The options of :func:`~isplab.data.align.align_pair`, in one dataclass."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from isplab.errors import InvalidInputError


@dataclass(frozen=True)
class AlignOptions:
    """How :func:`~isplab.data.align.align_pair` aligns a pair and cuts its patches.

    Attributes:
        patch: patch side in raw pixels (even, >= 16).
        stride: grid step in raw pixels (even, >= 2; None: ``patch``).
        flow_threshold: reject a patch whose unexplained flow exceeds this (raw pixels).
        min_keypoints: reject a patch when both its previews have fewer SIFT keypoints.
        min_correlation: reject a patch whose aligned grey previews correlate less.
        use_ecc, use_flow: run the ECC and residual-flow stages.
        sift_size: long side (pixels) SIFT works at; sift_features: keypoints kept per image.
        ratio: Lowe's ratio.
        ecc_levels, ecc_gauss_size: ECC pyramid levels and gaussian pre-filter size.
        ecc_size: long side (preview pixels) of ECC's finest level (None: the preview).
        flow_sigma: smoothing of the residual flow (gaussian sigma, raw pixels).
        flow_passes: residual-flow passes (each warps with the flow so far and adds what
            is left; the smoothing loses a little of a curved deformation each pass).
        flow_finest_scale: finest DIS pyramid level (0: the full preview resolution;
            1 measures a quarter as many vectors and is about 1.5x less precise).
        max_flow_std: confident flow only where a patch match is predicted to be this
            precise (preview pixels; :func:`~isplab.data.align.predicted_flow_std`).
        cut_patches: cut and score patches (False: alignment only).
        stem: name patch ids ``<stem>_<index>`` (default: the raw file's stem or ``pair``).
        raw_options: keyword arguments for :func:`isplab.raw.read`.

    Raises:
        InvalidInputError: ``patch`` or ``stride`` is odd or too small.
    """

    patch: int = 448
    stride: int | None = None
    flow_threshold: float = 1.2
    min_keypoints: int = 40
    min_correlation: float = 0.8
    use_ecc: bool = True
    use_flow: bool = True
    sift_size: int = 1200
    sift_features: int = 8000
    ratio: float = 0.75
    ecc_levels: int = 2
    ecc_gauss_size: int = 5
    ecc_size: int | None = 1024
    flow_sigma: float = 24.0
    flow_passes: int = 1
    flow_finest_scale: int = 0
    max_flow_std: float = 0.15
    cut_patches: bool = True
    stem: str | None = None
    raw_options: dict | None = None

    def __post_init__(self) -> None:
        if self.patch < 16 or self.patch % 2:
            raise InvalidInputError(f"patch must be an even number >= 16, got {self.patch}")
        step = self.grid_step
        if step < 2 or step % 2:
            raise InvalidInputError(f"stride must be an even number >= 2, got {step}")

    @property
    def grid_step(self) -> int:
        """The patch grid's step in raw pixels: ``stride``, else ``patch``."""
        return self.patch if self.stride is None else int(self.stride)

    @classmethod
    def resolve(cls, options: AlignOptions | int | None = None,
                overrides: Mapping[str, Any] | None = None) -> AlignOptions:
        """``options`` (an int is the patch side; None: the defaults) with the fields named
        in ``overrides`` replaced.

        Raises:
            TypeError: ``overrides`` names no field (the message a misspelt keyword argument
                of ``align_pair`` gives).
            InvalidInputError: see the class.
        """
        if options is None:
            base: dict[str, Any] = {}
        elif isinstance(options, AlignOptions):
            base = {f.name: getattr(options, f.name) for f in dataclasses.fields(cls)}
        else:
            base = {"patch": options}
        names = {f.name for f in dataclasses.fields(cls)}
        for key in overrides or {}:
            if key not in names:
                raise TypeError(f"align_pair() got an unexpected keyword argument {key!r}")
        return cls(**{**base, **(overrides or {})})
