"""Deterministic shards: which of N parts an input belongs to, the same on every machine.

``--shard K/N`` on develop, synth, enhance and evaluate keeps the inputs whose key (a file's
``parent/name``, an evaluation item's name) hashes to part K: a Slurm array, a Kubernetes job
or a Ray task list covers a dataset exactly once with no coordinator. The hash is BLAKE2b,
not crc32: crc32 is linear, so names differing in a digit or two (``kodim01`` .. ``kodim24``)
would crowd into a few shards and leave others empty.
"""

from __future__ import annotations

import hashlib

from isplab.errors import IsplabError


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"K/N"`` (1 <= K <= N) -> (K, N); None stays None."""
    if text is None:
        return None
    try:
        k, n = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise IsplabError(f"--shard must be K/N (e.g. 2/8), got {text!r}") from None
    if not 1 <= k <= n:
        raise IsplabError(f"--shard K/N needs 1 <= K <= N, got {text!r}")
    return k, n


def shard_of(key: str, n: int) -> int:
    """The part (1..n) of ``key``: a stable hash, the same in every process and machine."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n + 1


def in_shard(key: str, shard: tuple[int, int] | None) -> bool:
    """Whether ``key`` belongs to shard (K, N) (everything does without a shard)."""
    return shard is None or shard_of(key, shard[1]) == shard[0]
