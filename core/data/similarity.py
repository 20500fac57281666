"""Near-duplicate search: MinHash signatures of character shingles, candidate pairs from LSH bands.

Texts are compared after `comparable()` (Unicode NFKC, so full- and half-width punctuation are the same
character; case-folded; whitespace collapsed). Shingles are overlapping 3-character pieces of that text:
no word splitting, so Chinese (which has no spaces) and English are compared the same way.

The signatures are datasketch's MinHash (scheme "affine32", NUM_PERM permutations from seed SEED) of the
shingle hashes: `MinHash(num_perm=NUM_PERM, seed=SEED, hashfunc=shingle_hash).update_batch(shingles)`
gives the same values. They are computed for all texts at once with numpy, because datasketch's
per-set update costs about 60 µs a row. Candidate pairs come from the LSH bands datasketch's MinHashLSH
picks for a threshold, bucketed by sorting instead of one dictionary insert per row and band.

Shingles found in more than a fifth of the texts (such as a preamble every prompt starts with) can be
left out, so that rows are compared on what makes them different.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Sequence
from functools import lru_cache

import numpy as np
from datasketch import MinHash, MinHashLSH

NUM_PERM = 128
SEED = 1
SHINGLE = 3
_MULTIPLIER = np.uint32(0x01000193)   # FNV prime: a polynomial hash of the shingle's code points
_BLOCK = 8192                         # shingles per numpy block: keeps the (NUM_PERM × block) array in cache
_CHUNK_CHARS = 4_000_000              # characters hashed at once (bounds memory on huge inputs)
_MAX_U32 = np.uint32(0xFFFFFFFF)
BOILERPLATE_SHARE = 0.2               # a shingle in more than a fifth of the texts says little about any one
_BOILERPLATE_MIN_TEXTS = 10
_BOILERPLATE_SAMPLE = 5000
_PAIR_CHUNK = 32768                   # pairs compared at once (bounds the gathered signatures to ~32 MB)
# Ideographic punctuation that NFKC leaves alone, mapped to the ASCII that half-width text would use.
_CJK_PUNCTUATION = (("。", "."), ("、", ","), ("「", '"'), ("」", '"'), ("『", '"'), ("』", '"'), ("“", '"'),
                    ("”", '"'), ("‘", "'"), ("’", "'"), ("【", "["), ("】", "]"), ("《", "<"), ("》", ">"),
                    ("～", "~"), ("—", "-"), ("–", "-"))


def comparable(text: str) -> str:
    """Text as compared for duplicates: NFKC (full-width → half-width), case-folded, CJK punctuation
    mapped to ASCII, whitespace collapsed and trimmed."""
    folded = (text if unicodedata.is_normalized("NFKC", text) else unicodedata.normalize("NFKC", text)).casefold()
    if not folded.isascii():
        for mark, plain in _CJK_PUNCTUATION:   # str.replace per mark is several times faster than translate
            if mark in folded:
                folded = folded.replace(mark, plain)
    return " ".join(folded.split())


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


def _chunks(texts: Sequence[str]) -> Iterator[list[str]]:
    """Consecutive runs of texts of about _CHUNK_CHARS characters (bounds memory on huge inputs)."""
    chunk, size = [], 0
    for text in texts:
        chunk.append(text)
        size += len(text)
        if size >= _CHUNK_CHARS:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def common_shingles(texts: Sequence[str], share: float = BOILERPLATE_SHARE) -> np.ndarray:
    """Hashes of the shingles found in more than `share` of the texts (and in at least
    _BOILERPLATE_MIN_TEXTS): boilerplate such as a preamble every prompt starts with. Counted on an
    evenly spread sample of up to _BOILERPLATE_SAMPLE texts."""
    step = max(1, len(texts) // _BOILERPLATE_SAMPLE)
    sample = [texts[i] for i in range(0, len(texts), step)]
    if not sample:
        return np.empty(0, dtype=np.uint32)
    hashes, starts = _shingle_hashes(sample)
    owner = np.repeat(np.arange(len(sample), dtype=np.uint64), np.diff(np.append(starts, len(hashes))))
    per_text = unique((owner << np.uint64(32)) | hashes.astype(np.uint64)) & np.uint64(0xFFFFFFFF)
    values, counts = np.unique(per_text, return_counts=True)   # with counts numpy sorts, which is fast
    return values[counts > max(_BOILERPLATE_MIN_TEXTS, share * len(sample))]


def _without(hashes: np.ndarray, starts: np.ndarray, common: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The shingle hashes minus `common` ones; a text made only of common shingles keeps all of its own."""
    keep = ~np.isin(hashes, common)
    counts = np.diff(np.append(starts, len(hashes)))
    kept = np.add.reduceat(keep.astype(np.int64), starts) if len(hashes) else counts
    keep |= np.repeat(kept == 0, counts)
    kept = np.where(kept == 0, counts, kept)
    return hashes[keep], np.concatenate(([0], np.cumsum(kept)[:-1]))


def signatures(texts: Sequence[str], ignore: np.ndarray | None = None) -> np.ndarray:
    """MinHash signatures (len(texts) × NUM_PERM, uint32) of texts already passed through `comparable`,
    leaving out the shingles in `ignore` (see common_shingles)."""
    parts = [np.empty((0, NUM_PERM), np.uint32)]
    for chunk in _chunks(texts):
        hashes, starts = _shingle_hashes(chunk)
        if ignore is not None and len(ignore):
            hashes, starts = _without(hashes, starts, ignore)
        parts.append(_minhash(hashes, starts))
    return np.concatenate(parts)


def pair_similarity(pairs: np.ndarray, *signature_sets: np.ndarray) -> np.ndarray:
    """Estimated Jaccard similarity of each pair of rows (i, j). Given several signature arrays (say
    prompts and answers), of the union of each row's shingle sets: the MinHash of a union is the
    elementwise minimum of the MinHashes."""
    found = np.empty(len(pairs))
    for low in range(0, len(pairs), _PAIR_CHUNK):
        chunk = pairs[low:low + _PAIR_CHUNK]
        left, right = signature_sets[0][chunk[:, 0]], signature_sets[0][chunk[:, 1]]
        for more in signature_sets[1:]:
            np.minimum(left, more[chunk[:, 0]], out=left)
            np.minimum(right, more[chunk[:, 1]], out=right)
        found[low:low + len(chunk)] = (left == right).mean(axis=1)
    return found


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
    codes = unique(pairs[:, 0] * count + pairs[:, 1])
    return np.stack([codes // count, codes % count], axis=1)


def similar_pairs(sigs: np.ndarray, threshold: float) -> np.ndarray:
    """The candidate pairs whose estimated similarity is at least `threshold`."""
    pairs = candidate_pairs(sigs, threshold)
    return pairs[pair_similarity(pairs, sigs) >= threshold]


def groups(count: int, pairs: np.ndarray) -> list[list[int]]:
    """Connected groups (two or more members) of `count` items linked by `pairs`; each group sorted,
    groups in order of their first member. Every item takes the smallest label among its neighbours,
    and labels point to their own label (pointer jumping), until nothing changes."""
    if not len(pairs):
        return []
    left, right = pairs[:, 0], pairs[:, 1]
    label = np.arange(count)
    while True:
        lowest = np.minimum(label[left], label[right])
        updated = label.copy()
        np.minimum.at(updated, left, lowest)
        np.minimum.at(updated, right, lowest)
        updated = updated[updated]
        if np.array_equal(updated, label):
            break
        label = updated
    members = unique(pairs.ravel())
    members = members[np.argsort(label[members], kind="stable")]   # by group; within a group, in order
    cuts = np.flatnonzero(np.diff(label[members])) + 1
    return [group.tolist() for group in np.split(members, cuts)]


def unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique's hashing path is many times slower on large integer arrays)."""
    ordered = np.sort(values, kind="stable")
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))] if len(ordered) else ordered
