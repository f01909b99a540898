"""Side-by-side evaluation under named protocols: one honest table for every method.

- :mod:`isplab.evaluate.protocols`: what every method is given (``demosaic``,
  ``synthetic-isp``, ``paired``, ``rgb-pairs``; registry :data:`PROTOCOLS`);
- :mod:`isplab.evaluate.methods`: the methods by command-line string (registry
  :data:`METHODS`; each declares the inputs it needs);
- :mod:`isplab.evaluate.run`: :func:`evaluate`, :func:`markdown_table`,
  :func:`merge_results` (sharded runs).
"""

from isplab.evaluate.methods import METHODS, Method, resolve_method
from isplab.evaluate.protocols import (
    PROTOCOLS,
    default_border,
    default_data,
    parse_noise,
    protocol_items,
)
from isplab.evaluate.run import evaluate, markdown_table

__all__ = [
    "METHODS", "PROTOCOLS", "Method", "default_border", "default_data", "evaluate",
    "markdown_table", "parse_noise", "protocol_items", "resolve_method",
]
