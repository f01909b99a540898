"""The merge of sharded runs: ``isplab evaluate --shard K/N`` on N machines, then one result.

:func:`merge_results` takes the results (as written by ``--json``) and returns the result the
unsharded run gives: the per-image values in protocol order (each result keeps its items'
``indices``), means and medians recomputed from them, speed from the total megapixels and
seconds. It refuses, in one line, results of different runs (protocol, data, noise, seed,
limit, metrics, methods, border, number of shards) and an item evaluated twice; it warns
when shards are missing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from isplab.errors import InvalidInputError
from isplab.evaluate.run import method_summary

log = logging.getLogger("isplab.evaluate")

# what every shard of one evaluation has in common
SAME = ("protocol", "data", "noise", "seed", "limit", "metrics", "border", "protocol_images")
NEEDED = (*SAME, "shard", "images", "indices", "methods")


def merge_results(results: list[dict], names: Sequence[str] | None = None) -> dict:
    """One result from the results of shards 1..N of one evaluation (``names``: what to call
    them in messages, e.g. their files). A merged result may be merged again."""
    if not results:
        raise InvalidInputError("nothing to merge")
    names = list(names) if names is not None else [f"result {i + 1}" for i in
                                                   range(len(results))]
    for r, name in zip(results, names, strict=True):
        missing = [k for k in NEEDED if k not in r]
        if missing:
            raise InvalidInputError(f"not a result of isplab evaluate --json (no "
                                    f"{', '.join(missing)})", name)
    first = results[0]
    for r, name in zip(results[1:], names[1:], strict=True):
        for key in SAME:
            if r[key] != first[key]:
                raise InvalidInputError(f"shards of different {key}: {names[0]} has "
                                        f"{first[key]!r}, {name} has {r[key]!r}")
        if set(r["methods"]) != set(first["methods"]):
            raise InvalidInputError(f"shards of different methods: {names[0]} has "
                                    f"{', '.join(first['methods'])}, {name} has "
                                    f"{', '.join(r['methods'])}")
    shards, missing = _shards(results, names)
    order = _item_order(results, names)
    merged = {k: first[k] for k in SAME}
    merged.update(shard=None, shards=[list(s) for s in shards],
                  missing_shards=[f"{k}/{n}" for k, n in missing],
                  images=[order[i][1] for i in sorted(order)], indices=sorted(order),
                  methods={m: _merge_method(m, results, order, first["metrics"])
                           for m in first["methods"]})
    if missing:
        log.warning("shard%s %s missing: the merged result covers %d of %d images",
                    "s" if len(missing) > 1 else "", ", ".join(merged["missing_shards"]),
                    len(order), first["protocol_images"])
    return merged


def _shards(results: list[dict], names: list[str]
            ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The shards the results hold (an unsharded result is 1/1) and those missing from 1..N;
    refuses different N and a shard given twice."""
    held = [(tuple(s), name) for r, name in zip(results, names, strict=True)
            for s in (r.get("shards") or [r["shard"] or (1, 1)])]
    (_, n), first = held[0]
    seen: dict[tuple[int, int], str] = {}
    for (k, n_k), name in held:
        if n_k != n:
            raise InvalidInputError(f"shards of different N: {first} has {n}, {name} has {n_k}")
        if (k, n) in seen:
            raise InvalidInputError(f"shard {k}/{n} given twice: in {seen[k, n]} and {name}")
        seen[k, n] = name
    return sorted(seen), [(k, n) for k in range(1, n + 1) if (k, n) not in seen]


def _item_order(results: list[dict], names: list[str]
                ) -> dict[int, tuple[int, str, int]]:
    """protocol index -> (result, image name, position in that result); refuses an item
    evaluated twice."""
    order: dict[int, tuple[int, str, int]] = {}
    for i, r in enumerate(results):
        if len(r["indices"]) != len(r["images"]):
            raise InvalidInputError("images and indices differ in length", names[i])
        for pos, (index, image) in enumerate(zip(r["indices"], r["images"], strict=True)):
            if index in order:
                raise InvalidInputError(f"item {image} (protocol index {index}) evaluated "
                                        f"twice: in {names[order[index][0]]} and {names[i]}")
            order[index] = (i, image, pos)
    return order


def _merge_method(name: str, results: list[dict], order: dict[int, tuple[int, str, int]],
                  metrics: Sequence[str]) -> dict[str, Any]:
    """One method's entry: per-image values in protocol order, speed from the totals."""
    entries = [r["methods"][name] for r in results]
    values = {k: [entries[i][k]["per_image"][pos] for _, (i, _, pos) in sorted(order.items())]
              for k in metrics}
    return method_summary(entries[0]["note"], entries[0]["parameters"],
                          sum(e["megapixels"] for e in entries),
                          sum(e["seconds"] for e in entries), values)
