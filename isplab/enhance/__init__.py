"""Photo enhancement systems: MPSE (paired enhancement, semantic photorealistic style
transfer, post-processing) and MDIE (intrinsic decomposition + multi-domain translation)."""
