"""Raw sensor data: :class:`RawImage`, CFA patterns, pack/unpack, mosaic, readers, DNG writer."""

from isplab.raw.cfa import (
    BAYER_PATTERNS,
    PACKED_ORDER,
    channel_index_map,
    check_pattern,
    color_masks,
    mosaic,
    pack,
    packed_offsets,
    unpack,
)
from isplab.raw.dng import to_sensor_values, write_dng
from isplab.raw.header import RawHeader, read_header
from isplab.raw.image import RawImage
from isplab.raw.readers import read

__all__ = [
    "BAYER_PATTERNS", "PACKED_ORDER", "RawHeader", "RawImage", "channel_index_map",
    "check_pattern", "color_masks", "mosaic", "pack", "packed_offsets", "read", "read_header",
    "to_sensor_values", "unpack", "write_dng",
]
