"""Side-by-side evaluation under named protocols: one honest table for every method.

- :mod:`isplab.evaluate.protocols`: what every method is given (``demosaic``,
  ``synthetic-isp``, ``paired``, ``rgb-pairs``; registry :data:`PROTOCOLS`);
- :mod:`isplab.evaluate.methods`: the methods by command-line string (registry
  :data:`METHODS`; each declares the inputs it needs);
- :mod:`isplab.evaluate.run`: :func:`evaluate` (``shard=(K, N)`` for one of N machines),
  :func:`markdown_table`;
- :mod:`isplab.evaluate.merge`: :func:`merge_results` (the shards' results as one).
"""

from isplab.evaluate.merge import merge_results
from isplab.evaluate.methods import METHODS, Method, resolve_method
from isplab.evaluate.protocols import (
    PROTOCOLS,
    default_border,
    default_data,
    parse_noise,
    protocol_items,
)
from isplab.evaluate.run import evaluate, in_shard, markdown_table

__all__ = [
    "METHODS", "PROTOCOLS", "Method", "default_border", "default_data", "evaluate", "in_shard",
    "markdown_table", "merge_results", "parse_noise", "protocol_items", "resolve_method",
]
