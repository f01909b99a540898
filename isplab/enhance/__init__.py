"""Photo enhancement systems: MPSE (paired enhancement, semantic photorealistic style
transfer, post-processing) and MDIE (intrinsic decomposition + multi-domain translation).

Modules: ``matting`` (matting Laplacian), ``segment`` (co-segmentation, palette masks),
``style`` (two-stage L-BFGS style transfer), ``lime`` (low-light enhancement, LOE),
``recommend`` (reference ranking), ``pipeline`` (``enhance_mpse``), ``domains`` (colour /
texture / noise degradations), ``intrinsic`` (decomposition losses and baselines),
``mdie`` (``load_mdie``, ``MDIE.enhance``). ``docs/enhance.md``, ``docs/mdie.md``.
"""

from isplab.enhance.lime import lightness_order_error, lime, post_process
from isplab.enhance.matting import matting_energy, matting_laplacian
from isplab.enhance.pipeline import enhance_mpse
from isplab.enhance.recommend import recommend_references
from isplab.enhance.segment import co_segment
from isplab.enhance.style import style_transfer

__all__ = ["lightness_order_error", "lime", "post_process", "matting_energy",
           "matting_laplacian", "enhance_mpse", "recommend_references", "co_segment",
           "style_transfer"]
