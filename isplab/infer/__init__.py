"""Inference: tiled full-resolution development in bounded memory, learned-ISP develop."""

from isplab.infer.develop import LearnedISP, develop_raw
from isplab.infer.tiled import GlobalStatistics, resolve_device, tiled_forward

__all__ = ["LearnedISP", "develop_raw", "GlobalStatistics", "resolve_device", "tiled_forward"]
