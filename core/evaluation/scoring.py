"""Automatic metrics that are right in Chinese and English, per sample and per set.

    language("诊所几点开门？")                 -> "zh"
    sample = score(prediction, reference)     -> SampleScores (sentence BLEU, chrF, ROUGE-1/2/L, exact, lengths)
    aggregate([samples…])                     -> {"bleu": 41.2, "chrf": …, "rouge1": …, "exact_match": …}

BLEU and chrF come from sacrebleu, ROUGE from rouge-score, called directly (HF `evaluate` fetches its metric
scripts from the hub, so it cannot run offline). What makes them right outside English:

- BLEU tokenises each sample by its language: sacrebleu's `zh` tokenizer for Chinese (its default `13a`
  sees a Chinese sentence as one word, so BLEU is 0.0), `char` for Japanese and Korean, `13a` otherwise.
  A set's BLEU adds up the samples' n-gram statistics (sacrebleu's own sufficient statistics), so a mixed
  set is one corpus BLEU in which every sample was tokenised the right way, and a one-language set gives
  exactly `sacrebleu.corpus_bleu(…, tokenize=…)`.
- ROUGE uses a tokenizer that makes each CJK character a token and keeps other words whole. rouge-score's
  default keeps only [a-z0-9], so it finds no token at all in Chinese and scores every Chinese answer 0.
  On ASCII text it gives the default's tokens, so English scores equal rouge-score's.

All scores are on a 0-100 scale (ROUGE F1 and exact match ×100, like BLEU and chrF). A set's ROUGE is the
mean of its samples' F1, as rouge-score's aggregator reports it; chrF adds up character n-gram statistics
like BLEU.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np

LanguageCode = str   # "zh", "ja", "ko", "en" or "other"
METRICS = ("bleu", "chrf", "rouge1", "rouge2", "rougeL", "exact_match")   # text metrics, 0-100, higher is better
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff"
_KANA = "\u3040-\u30ff\u31f0-\u31ff"
_HANGUL = "\uac00-\ud7af\u1100-\u11ff\u3130-\u318f"
_CJK = _HAN + _KANA + _HANGUL
_ROUGE_TOKEN = re.compile(rf"[{_CJK}]|(?:(?![{_CJK}])[^\W_])+")
_SPACES = re.compile(r"\s+")
_CJK_SHARE = 0.3   # at least this share of a text's letters in a CJK script makes it that language


def language(text: str) -> LanguageCode:
    """The language of a text, as far as metrics care: "zh" (Han characters), "ja" (kana), "ko" (Hangul),
    "en" (plain ASCII letters) or "other" (other scripts, or no letters at all)."""
    letters = [char for char in text if char.isalpha()]
    if not letters:
        return "other"
    def share(pattern: str) -> float:
        return len(re.findall(f"[{pattern}]", "".join(letters))) / len(letters)
    if share(_HANGUL) >= _CJK_SHARE:
        return "ko"
    if share(_KANA) > 0 and share(_KANA + _HAN) >= _CJK_SHARE:
        return "ja"
    if share(_HAN) >= _CJK_SHARE:
        return "zh"
    ascii_letters = sum(char.isascii() for char in letters)
    return "en" if ascii_letters / len(letters) >= 0.9 else "other"


def bleu_tokenizer(code: LanguageCode) -> str:
    """sacrebleu's tokenizer for a language: 'zh' for Chinese, 'char' for Japanese/Korean, '13a' otherwise."""
    return {"zh": "zh", "ja": "char", "ko": "char"}.get(code, "13a")


class CjkTokenizer:
    """rouge-score tokenizer: each CJK character is a token, other words are kept whole (lower-cased).
    On ASCII text its tokens are those of rouge-score's default tokenizer (without stemming)."""

    def tokenize(self, text: str) -> list[str]:
        return _ROUGE_TOKEN.findall(unicodedata.normalize("NFKC", text).lower())


@lru_cache(maxsize=8)
def _bleu(tokenize: str) -> Any:
    from sacrebleu.metrics import BLEU

    return BLEU(tokenize=tokenize, effective_order=True)


@lru_cache(maxsize=1)
def _chrf() -> Any:
    from sacrebleu.metrics import CHRF

    return CHRF()


@lru_cache(maxsize=1)
def _rouge() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), tokenizer=CjkTokenizer())


def normalised(text: str) -> str:
    """What exact match compares: NFKC, case-folded, whitespace collapsed, trimmed."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


@dataclass(frozen=True)
class SampleScores:
    """One answer against its reference. Scores 0-100; the statistics let a set be scored as a corpus."""

    language: LanguageCode
    bleu: float                 # sentence BLEU (effective order, exponential smoothing: sacrebleu.sentence_bleu)
    chrf: float
    rouge1: float
    rouge2: float
    rougeL: float
    exact_match: float          # 100 when the normalised texts are equal, else 0
    prediction_chars: int
    reference_chars: int
    bleu_stats: tuple[int, ...]   # sacrebleu's sufficient statistics (matches, totals, lengths)
    chrf_stats: tuple[int, ...]

    def scores(self) -> dict[str, float]:
        return {name: round(getattr(self, name), 4) for name in METRICS}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SampleScores:
        return cls(**{**data, "bleu_stats": tuple(data["bleu_stats"]), "chrf_stats": tuple(data["chrf_stats"])})


def score(prediction: str, reference: str, code: LanguageCode | None = None) -> SampleScores:
    """Score one answer against its reference (language detected from the reference unless given)."""
    code = code or language(reference)
    bleu = _bleu(bleu_tokenizer(code))
    bleu_stats = bleu._extract_corpus_statistics([prediction], [[reference]])[0]
    chrf_stats = _chrf()._extract_corpus_statistics([prediction], [[reference]])[0]
    rouge = _rouge().score(reference, prediction)
    return SampleScores(
        language=code,
        bleu=bleu.sentence_score(prediction, [reference]).score,
        chrf=_chrf()._compute_score_from_stats(chrf_stats).score,
        rouge1=rouge["rouge1"].fmeasure * 100, rouge2=rouge["rouge2"].fmeasure * 100,
        rougeL=rouge["rougeL"].fmeasure * 100,
        exact_match=100.0 if normalised(prediction) == normalised(reference) else 0.0,
        prediction_chars=len(prediction), reference_chars=len(reference),
        bleu_stats=tuple(int(v) for v in bleu_stats), chrf_stats=tuple(int(v) for v in chrf_stats))


@dataclass(frozen=True)
class Columns:
    """A set of samples as arrays, so that resampled sets (the bootstrap) score without re-tokenising."""

    bleu_stats: np.ndarray    # (n, 10)
    chrf_stats: np.ndarray    # (n, 18)
    per_sample: dict[str, np.ndarray]   # rouge1, rouge2, rougeL, exact_match: (n,)
    nll: np.ndarray           # summed negative log-likelihood of each reference answer (nan: not measured)
    tokens: np.ndarray        # reference answer tokens it was measured over

    @classmethod
    def of(cls, samples: Sequence[SampleScores], nll: Sequence[float] | None = None,
           tokens: Sequence[int] | None = None) -> Columns:
        count = len(samples)
        return cls(np.array([s.bleu_stats for s in samples], dtype=np.int64).reshape(count, -1),
                   np.array([s.chrf_stats for s in samples], dtype=np.int64).reshape(count, -1),
                   {name: np.array([getattr(s, name) for s in samples], dtype=float) for name in (*ROUGE_TYPES, "exact_match")},
                   np.array(nll if nll is not None else [np.nan] * count, dtype=float),
                   np.array(tokens if tokens is not None else [0] * count, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.nll)

    def subset(self, rows: np.ndarray) -> Columns:
        return Columns(self.bleu_stats[rows], self.chrf_stats[rows], {k: v[rows] for k, v in self.per_sample.items()},
                       self.nll[rows], self.tokens[rows])


def bleu_from_stats(stats: np.ndarray) -> float:
    """Corpus BLEU from summed sufficient statistics (any tokenizer: they were counted per sample)."""
    return float(_bleu("13a")._compute_score_from_stats([int(v) for v in stats]).score)


def chrf_from_stats(stats: np.ndarray) -> float:
    return float(_chrf()._compute_score_from_stats([int(v) for v in stats]).score)


def perplexity(nll: np.ndarray, tokens: np.ndarray) -> float:
    """exp(total NLL / total tokens) over the samples that were measured; nan when none were."""
    measured = ~np.isnan(nll) & (tokens > 0)
    total = tokens[measured].sum()
    return float(np.exp(nll[measured].sum() / total)) if total else float("nan")


def metric_value(name: str, columns: Columns) -> float:
    """One set-level metric of `columns` (see METRICS, plus "perplexity")."""
    if len(columns) == 0:
        return float("nan")
    if name == "bleu":
        return bleu_from_stats(columns.bleu_stats.sum(axis=0))
    if name == "chrf":
        return chrf_from_stats(columns.chrf_stats.sum(axis=0))
    if name == "perplexity":
        return perplexity(columns.nll, columns.tokens)
    return float(columns.per_sample[name].mean())


def length_stats(samples: Sequence[SampleScores]) -> dict[str, float]:
    """Answer lengths in characters: mean, median and 90th percentile of the answers and the references,
    and the mean ratio answer/reference (1.0: as long as the reference)."""
    if not samples:
        return {}
    answers = np.array([s.prediction_chars for s in samples], dtype=float)
    references = np.array([s.reference_chars for s in samples], dtype=float)
    return {"answer_mean": round(float(answers.mean()), 1), "answer_median": float(np.median(answers)),
            "answer_p90": round(float(np.percentile(answers, 90)), 1),
            "reference_mean": round(float(references.mean()), 1), "reference_median": float(np.median(references)),
            "length_ratio": round(float((answers / np.maximum(references, 1)).mean()), 3),
            "empty_answers": int((answers == 0).sum())}
