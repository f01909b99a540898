"""Align a phone raw to a DSLR photo and cut aligned (packed raw, sRGB target) patch pairs.

Coordinates. Everything is expressed in *phone raw pixels* (pixel centres at integers of the
full-resolution mosaic) and *reference pixels* (the DSLR photo, full resolution). The phone is
worked on through a half-resolution **preview** (one pixel per 2x2 Bayer block, its centre at
raw ``2 * p + 0.5``), so the raw is never resampled: only the reference is warped.

Stages (:func:`align_pair`, options in :class:`AlignOptions`):

1. *Global* (:mod:`.registration`): SIFT on a gamma-encoded, mean/std-normalised grey preview
   of the raw and on the reference (both at most ``sift_size`` pixels wide), Lowe's ratio
   test, RANSAC homography; the scales of both images are composed into it, so the DSLR may
   have any resolution.
2. *ECC* (:mod:`.registration`, :mod:`.photometric`): the reference is reduced to the
   preview's scale and its colours mapped to the phone preview's (affine fit on the
   overlap), the phone's grey histogram is matched to the reference's, and
   ``cv2.findTransformECC`` (``MOTION_HOMOGRAPHY``, gaussian pre-filter) refines the
   homography on the overlap, coarse to fine.
3. *Flow* (:mod:`.flow`): dense residual flow (``cv2.DISOpticalFlow``) from the preview to the
   warped reference at the full preview resolution, kept only where it is confident:
   forward-backward consistent, close to its local mean, and precise (the phone's noise
   level against the reference's texture, :func:`predicted_flow_std`); then a polynomial
   plus normalised convolution (so it fades to the polynomial away from confident areas).
   The final map is ``reference = H(p + r(p))``.
4. *Patches* (:mod:`.cutting`): a grid of ``patch x patch`` raw crops at even offsets (the
   Bayer phase kept); the reference is warped onto each crop's raw pixel grid
   (``cv2.remap``); each patch is scored (residual flow, SIFT keypoints, correlation; all
   from whole-frame maps through integral images) and accepted or rejected with its reasons,
   as the filters of Xing et al. 2022 do.

:func:`align_dataset` (:mod:`.dataset`) runs this over many pairs and writes the
``PairedRawRGBDataset`` layout (``raw/``, ``rgb/``, ``meta/``, ``patches.csv``,
``summary.json``); a pair that fails is reported and nothing of it is written.

Modules: :mod:`.options` (:class:`AlignOptions`), :mod:`.results` (result types,
:class:`AlignmentError`), :mod:`.geometry` (homographies, resizing, warping the reference),
:mod:`.photometric` (raw preview, grey images, histogram and colour matching),
:mod:`.registration`, :mod:`.flow`, :mod:`.cutting`, :mod:`.pair` (:func:`align_pair`) and
:mod:`.dataset`.
"""

from __future__ import annotations

from isplab.data.align.dataset import (
    PATCH_COLUMNS,
    align_dataset,
    align_one,
    duplicate_stems,
    pair_files,
    prepare_dataset,
    summary_names,
    unpaired_entries,
    write_summary,
)
from isplab.data.align.flow import (
    noise_level,
    predicted_flow_std,
    residual_flow,
    smooth_flow_model,
)
from isplab.data.align.geometry import reference_at_raw_scale
from isplab.data.align.options import AlignOptions
from isplab.data.align.pair import align_pair
from isplab.data.align.photometric import (
    apply_colour_transform,
    fit_colour_transform,
    match_histogram,
    raw_preview,
)
from isplab.data.align.registration import global_homography, refine_ecc
from isplab.data.align.results import (
    REJECT_REASONS,
    AlignedPatch,
    AlignmentError,
    AlignResult,
    PatchScore,
)

__all__ = [
    "PATCH_COLUMNS",
    "REJECT_REASONS",
    "AlignOptions",
    "AlignResult",
    "AlignedPatch",
    "AlignmentError",
    "PatchScore",
    "align_dataset",
    "align_one",
    "align_pair",
    "apply_colour_transform",
    "duplicate_stems",
    "fit_colour_transform",
    "global_homography",
    "match_histogram",
    "noise_level",
    "pair_files",
    "predicted_flow_std",
    "prepare_dataset",
    "raw_preview",
    "reference_at_raw_scale",
    "refine_ecc",
    "residual_flow",
    "smooth_flow_model",
    "summary_names",
    "unpaired_entries",
    "write_summary",
]
