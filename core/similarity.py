"""Near-duplicate search: MinHash signatures of character shingles, candidate pairs from LSH bands.

Texts are compared after `comparable()` (Unicode NFKC, so full- and half-width punctuation are the same
character; case-folded; whitespace collapsed). Shingles are overlapping 3-character pieces of that text:
no word splitting, so Chinese (which has no spaces) and English are compared the same way.

The signatures are datasketch's MinHash (scheme "affine32", NUM_PERM permutations from seed SEED) of the
shingle hashes: `MinHash(num_perm=NUM_PERM, seed=SEED, hashfunc=shingle_hash).update_batch(shingles)`
gives the same values. They are computed for all texts at once with numpy, because datasketch's
per-set update costs about 60 µs a row. Candidate pairs come from the LSH bands datasketch's MinHashLSH
picks for a threshold, bucketed by sorting instead of one dictionary insert per row and band.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Sequence

import numpy as np
from datasketch import MinHash, MinHashLSH

NUM_PERM = 128
SEED = 1
SHINGLE = 3
_MULTIPLIER = np.uint32(0x01000193)   # FNV prime: a polynomial hash of the shingle's code points
_BLOCK = 8192                         # shingles per numpy block: keeps the (NUM_PERM × block) array in cache
_CHUNK_CHARS = 4_000_000              # characters hashed at once (bounds memory on huge inputs)
_MAX_U32 = np.uint32(0xFFFFFFFF)
# Ideographic punctuation that NFKC leaves alone, mapped to the ASCII that half-width text would use.
_CJK_PUNCTUATION = str.maketrans({"。": ".", "、": ",", "「": '"', "」": '"', "『": '"', "』": '"', "“": '"',
                                  "”": '"', "‘": "'", "’": "'", "【": "[", "】": "]", "《": "<", "》": ">",
                                  "～": "~", "—": "-", "–": "-"})
_SPACE = re.compile(r"\s+")


def comparable(text: str) -> str:
    """Text as compared for duplicates: NFKC (full-width → half-width), case-folded, CJK punctuation
    mapped to ASCII, whitespace collapsed and trimmed."""
    folded = unicodedata.normalize("NFKC", text).casefold().translate(_CJK_PUNCTUATION)
    return _SPACE.sub(" ", folded).strip()


def shingles(text: str) -> list[str]:
    """The overlapping SHINGLE-character pieces of a text; a shorter text is one piece, padded with NULs."""
    text = text.ljust(SHINGLE, "\0")
    return [text[i:i + SHINGLE] for i in range(len(text) - SHINGLE + 1)]


def shingle_hash(shingle: str) -> int:
    """The 32-bit hash of one shingle (what `signatures` computes with numpy for all of them)."""
    value = 0
    for char in shingle:
        value = (value * int(_MULTIPLIER) + ord(char)) & 0xFFFFFFFF
    return value


@lru_cache(maxsize=1)
def _permutations() -> tuple[np.ndarray, np.ndarray]:
    a, b = MinHash(num_perm=NUM_PERM, seed=SEED).permutations
    return a.astype(np.uint32)[:, None], b.astype(np.uint32)[:, None]


def _fmix32(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's finalizer, which datasketch's affine32 scheme applies to every input hash."""
    values = values ^ (values >> np.uint32(16))
    values = values * np.uint32(0x85EBCA6B)
    values = values ^ (values >> np.uint32(13))
    values = values * np.uint32(0xC2B2AE35)
    return values ^ (values >> np.uint32(16))


def _shingle_hashes(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """All shingle hashes of `texts` in one array, and where each text's run starts in it."""
    padded = [text.ljust(SHINGLE, "\0") for text in texts]
    lengths = np.fromiter(map(len, padded), dtype=np.int64, count=len(padded))
    codes = np.frombuffer("".join(padded).encode("utf-32-le"), dtype=np.uint32)
    windows = len(codes) - SHINGLE + 1
    hashes = np.zeros(windows, dtype=np.uint32)
    for offset in range(SHINGLE):
        hashes *= _MULTIPLIER
        hashes += codes[offset:offset + windows]
    # A window that starts in the last SHINGLE-1 characters of a text runs into the next one.
    ends = np.cumsum(lengths)
    inside = np.ones(windows, dtype=bool)
    for back in range(1, SHINGLE):
        crossing = ends - back
        inside[crossing[crossing < windows]] = False
    counts = lengths - SHINGLE + 1
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    return hashes[inside], starts


def _minhash(hashes: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """(texts × NUM_PERM) signatures: the minimum of a*h+b (mod 2^32) over each text's shingle hashes."""
    a, b = _permutations()
    mixed = _fmix32(hashes)
    result = np.full((NUM_PERM, len(starts)), _MAX_U32, dtype=np.uint32)
    for low in range(0, len(mixed), _BLOCK):
        high = min(low + _BLOCK, len(mixed))
        first = int(np.searchsorted(starts, low, side="right")) - 1
        last = int(np.searchsorted(starts, high, side="left"))
        offsets = np.maximum(starts[first:last] - low, 0)   # a text that began in an earlier block starts at 0
        block = mixed[low:high] * a
        block += b
        np.minimum(result[:, first:last], np.minimum.reduceat(block, offsets, axis=1), out=result[:, first:last])
    return np.ascontiguousarray(result.T)


def signatures(texts: Sequence[str]) -> np.ndarray:
    """MinHash signatures (len(texts) × NUM_PERM, uint32) of texts already passed through `comparable`."""
    parts, chunk, size = [], [], 0
    for text in texts:
        chunk.append(text)
        size += len(text)
        if size >= _CHUNK_CHARS:
            parts.append(_minhash(*_shingle_hashes(chunk)))
            chunk, size = [], 0
    if chunk or not parts:
        parts.append(_minhash(*_shingle_hashes(chunk)) if chunk else np.empty((0, NUM_PERM), np.uint32))
    return np.concatenate(parts)


def similarity(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Estimated Jaccard similarity of paired signatures (row i of left with row i of right)."""
    return (left == right).mean(axis=1) if len(left) else np.empty(0)


@lru_cache(maxsize=16)
def _bands(threshold: float) -> tuple[tuple[int, int], ...]:
    return tuple(MinHashLSH(threshold=threshold, num_perm=NUM_PERM).hashranges)


def candidate_pairs(sigs: np.ndarray, threshold: float) -> np.ndarray:
    """(m × 2) index pairs i < j whose signatures share at least one LSH band: every pair at least
    `threshold` similar is among them with high probability. Within a bucket each member is paired with
    the bucket's first member and with its predecessor, so a bucket of g rows costs 2g pairs, not g²."""
    count = len(sigs)
    if count < 2:
        return np.empty((0, 2), dtype=np.int64)
    found = []
    for start, end in _bands(threshold):
        weights = np.random.default_rng(start).integers(1, 2**63, end - start, dtype=np.uint64) | np.uint64(1)
        keys = (sigs[:, start:end].astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)
        order = np.argsort(keys, kind="stable")   # stable: members of a bucket stay in row order
        same = keys[order][1:] == keys[order][:-1]
        member = np.flatnonzero(same) + 1          # positions (in `order`) that continue a bucket
        if not len(member):
            continue
        bucket_start = np.maximum.accumulate(np.where(np.concatenate(([True], ~same)), np.arange(count), 0))
        found.append(np.stack([order[bucket_start[member]], order[member]], axis=1))
        found.append(np.stack([order[member - 1], order[member]], axis=1))
    if not found:
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.concatenate(found).astype(np.int64)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    codes = np.unique(pairs[:, 0] * count + pairs[:, 1])
    return np.stack([codes // count, codes % count], axis=1)


def similar_pairs(sigs: np.ndarray, threshold: float) -> np.ndarray:
    """The candidate pairs whose estimated similarity is at least `threshold`."""
    pairs = candidate_pairs(sigs, threshold)
    return pairs[similarity(sigs[pairs[:, 0]], sigs[pairs[:, 1]]) >= threshold]


def groups(count: int, pairs: np.ndarray) -> list[list[int]]:
    """Connected groups (two or more members) of `count` items linked by `pairs`; each group sorted,
    groups in order of their first member."""
    parent = list(range(count))

    def root(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for a, b in pairs:
        ra, rb = root(int(a)), root(int(b))
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = {}
    for node in sorted({int(n) for pair in pairs for n in pair}):
        members.setdefault(root(node), []).append(node)
    return sorted((group for group in members.values() if len(group) > 1), key=lambda group: group[0])
