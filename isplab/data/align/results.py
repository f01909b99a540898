"""What an alignment produces: patch scores, accepted patch pairs, :class:`AlignResult`, and
the :class:`AlignmentError` a pair that cannot be aligned raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from isplab.data.align.geometry import _preview_to_reference, _remap_reference
from isplab.errors import IsplabError

#: reasons a patch can be rejected, in the order they are checked
REJECT_REASONS = ("overlap", "keypoints", "flow", "correlation")


class AlignmentError(IsplabError):
    """A phone/reference pair could not be aligned (too few matches, degenerate warp...)."""


@dataclass
class PatchScore:
    """Scores of one candidate patch (box in phone raw pixels, even offsets).

    Attributes:
        id: ``<stem>_<index>`` (the file name the patch gets in a dataset).
        x, y: top-left corner in raw pixels (even).
        size: side in raw pixels.
        overlap: fraction of the patch that maps inside the reference.
        keypoints_phone, keypoints_reference: SIFT keypoints found in the patch's preview
            (phone) and in the aligned reference at the same scale.
        flow: mean magnitude (raw pixels) of the dense flow the alignment could not explain
            (measured flow minus the smooth residual that was applied).
        correlation: normalised cross-correlation of the grey previews after alignment.
        confident: fraction of the patch where the flow was confident.
        accepted: True when no filter rejects it.
        reason: the failed filters joined by ``+`` (``""`` when accepted).
    """

    id: str
    x: int
    y: int
    size: int
    overlap: float = 0.0
    keypoints_phone: int = 0
    keypoints_reference: int = 0
    flow: float = float("nan")
    correlation: float = float("nan")
    confident: float = 0.0
    accepted: bool = False
    reason: str = ""


@dataclass
class AlignedPatch:
    """An accepted patch pair.

    Attributes:
        score: its :class:`PatchScore` (box, scores).
        raw_packed: ``4 x P/2 x P/2`` float32 in [0, 1], R, G1, G2, B: the raw crop, not
            resampled (same normalisation as :attr:`RawImage.mosaic`).
        target_srgb: ``3 x P x P`` float32 sRGB in [0, 1]: the reference warped onto the
            crop's raw pixel grid.
    """

    score: PatchScore
    raw_packed: np.ndarray
    target_srgb: np.ndarray


@dataclass
class AlignResult:
    """Everything :func:`~isplab.data.align.align_pair` found.

    Attributes:
        homography: 3x3, phone raw pixel -> reference pixel (global + ECC; the residual
            flow comes on top of it, see :meth:`reference_coords`).
        homography_global: the same after the SIFT/RANSAC stage only.
        preview_homography: 3x3, preview pixel -> reference pixel (``homography`` composed
            with raw -> preview).
        flow: ``h x w x 2`` float32 residual flow on the preview grid, in preview pixels
            (``h, w`` = raw size // 2); zero where it was not confident.
        valid: ``h x w`` bool on the preview grid: maps inside the reference and the residual
            there is supported by confident flow nearby.
        overlap: ``h x w`` bool on the preview grid: maps inside the reference.
        raw_shape: (height, width) of the phone mosaic.
        reference_shape: (height, width) of the reference.
        patches: the scores of every candidate patch.
        accepted: the accepted patch pairs.
        stats: matches, inliers, ECC correlation, flow statistics, seconds per stage.
    """

    homography: np.ndarray
    homography_global: np.ndarray
    preview_homography: np.ndarray
    flow: np.ndarray
    valid: np.ndarray
    overlap: np.ndarray
    raw_shape: tuple[int, int]
    reference_shape: tuple[int, int]
    patches: list[PatchScore] = field(default_factory=list)
    accepted: list[AlignedPatch] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    def reference_coords(self, x0: int = 0, y0: int = 0, width: int | None = None,
                         height: int | None = None, use_flow: bool = True
                         ) -> tuple[np.ndarray, np.ndarray]:
        """Reference pixel coordinates (x, y) of the raw pixels of a box.

        Args:
            x0, y0, width, height: the box in raw pixels (default: the whole raw).
            use_flow: add the residual flow (False: homography only).

        Returns:
            Two ``height x width`` float32 arrays, ready for ``cv2.remap`` of the reference.
        """
        width = self.raw_shape[1] - x0 if width is None else width
        height = self.raw_shape[0] - y0 if height is None else height
        px = (np.arange(x0, x0 + width, dtype=np.float32) - 0.5) / 2
        py = (np.arange(y0, y0 + height, dtype=np.float32) - 0.5) / 2
        return _preview_to_reference(self.preview_homography, self.flow if use_flow else None,
                                     px, py)

    def warp_reference(self, reference: np.ndarray, x0: int = 0, y0: int = 0,
                       width: int | None = None, height: int | None = None,
                       scaled: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """The reference (``H x W x C`` float32) resampled onto a box of the raw pixel grid
        (anti-aliased when the reference has more pixels; cubic interpolation, clipped to
        [0, 1]); ``height x width x C`` float32. ``scaled``: the result of
        :func:`~isplab.data.align.reference_at_raw_scale`, to reuse over many boxes."""
        mx, my = self.reference_coords(x0, y0, width, height)
        return _remap_reference(reference, mx, my, self.homography, self.raw_shape, scaled)
