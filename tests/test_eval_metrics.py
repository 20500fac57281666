"""Evaluation metrics equal the reference libraries on the same strings, in English and in Chinese, and the
bootstrap intervals behave: they bracket the value, are repeatable, and a paired difference that is the same
on every prompt has an interval that excludes 0."""

import numpy as np
import pytest
import sacrebleu
from rouge_score import rouge_scorer

from core.evaluation import scoring, stats
from core.evaluation.scoring import Columns

EN = [("The clinic opens at eight in the morning.", "The clinic opens at 8 in the morning."),
      ("Bring your insurance card.", "Please bring your insurance card and a photo ID."),
      ("Yes, you can book online.", "You can book, move or cancel an appointment online.")]
ZH = [("诊所早上八点开门。", "诊所周一至周五早上八点开门。"),
      ("请携带医保卡和身份证。", "请带上医保卡。"),
      ("可以在网上预约。", "您可以通过电话或网上预约。")]


class CharTokenizer:
    """Each character a token (spaces and punctuation dropped): the plainest CJK tokenizer."""

    def tokenize(self, text):
        return [char for char in text if char.isalnum()]


def test_bleu_and_chrf_equal_sacrebleu_in_english_and_chinese():
    for pairs, tokenize in ((EN, "13a"), (ZH, "zh")):
        predictions, references = [p for p, _ in pairs], [r for _, r in pairs]
        samples = [scoring.score(p, r) for p, r in pairs]
        columns = Columns.of(samples)
        assert scoring.metric_value("bleu", columns) == pytest.approx(
            sacrebleu.corpus_bleu(predictions, [references], tokenize=tokenize).score)
        assert scoring.metric_value("chrf", columns) == pytest.approx(sacrebleu.corpus_chrf(predictions, [references]).score)
        for sample, (p, r) in zip(samples, pairs):
            assert sample.bleu == pytest.approx(sacrebleu.sentence_bleu(p, [r], tokenize=tokenize).score)
            assert sample.chrf == pytest.approx(sacrebleu.sentence_chrf(p, [r]).score)
    # The reason for the language switch: 13a sees a Chinese sentence as one word.
    assert sacrebleu.corpus_bleu([ZH[0][0]], [[ZH[0][1]]], tokenize="13a").score == 0.0
    assert scoring.score(*ZH[0]).bleu > 0


def test_rouge_equals_rouge_score_and_is_not_zero_for_chinese():
    default = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    for prediction, reference in EN:
        ours, theirs = scoring.score(prediction, reference), default.score(reference, prediction)
        for name in ("rouge1", "rouge2", "rougeL"):
            assert getattr(ours, name) == pytest.approx(theirs[name].fmeasure * 100)
    by_character = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=CharTokenizer())
    prediction, reference = ZH[0]
    assert default.score(reference, prediction)["rouge1"].fmeasure == 0.0   # the default finds no Chinese token
    ours, theirs = scoring.score(prediction, reference), by_character.score(reference, prediction)
    for name in ("rouge1", "rouge2", "rougeL"):
        assert getattr(ours, name) == pytest.approx(theirs[name].fmeasure * 100) and getattr(ours, name) > 0
    # all 8 predicted characters are among the reference's 13: F1 = 2·8 / (8 + 13)
    assert ours.rouge1 == pytest.approx(100 * 2 * 8 / (8 + 13))
    mixed = scoring.CjkTokenizer().tokenize("请带上 Insurance card 和ID。")
    assert mixed == ["请", "带", "上", "insurance", "card", "和", "id"]


def test_languages_exact_match_and_a_mixed_set_scored_per_language():
    texts = ("诊所几点开门？", "When do you open?", "何時に開きますか", "언제 열어요?", "Когда вы открыты?", "42")
    assert [scoring.language(text) for text in texts] == ["zh", "en", "ja", "ko", "other", "other"]
    assert scoring.score("  the Clinic opens. ", "The clinic  opens.").exact_match == 100.0
    assert scoring.score("The clinic opens", "The clinic opens.").exact_match == 0.0
    mixed = [*EN, *ZH]
    columns = Columns.of([scoring.score(p, r) for p, r in mixed])
    stats_en = Columns.of([scoring.score(p, r) for p, r in EN]).bleu_stats.sum(axis=0)
    stats_zh = Columns.of([scoring.score(p, r) for p, r in ZH]).bleu_stats.sum(axis=0)
    assert (columns.bleu_stats.sum(axis=0) == stats_en + stats_zh).all()   # each sample tokenised by its language


def test_bootstrap_intervals_bracket_the_value_and_paired_differences_are_paired():
    rng = np.random.default_rng(0)
    samples = [scoring.score(p, r) for p, r in EN * 5]
    columns = Columns.of(samples, nll=rng.uniform(5, 10, len(samples)), tokens=[5] * len(samples))
    for name in ("bleu", "chrf", "rougeL", "perplexity"):
        estimate = stats.interval(name, columns)
        assert estimate.ci_low <= estimate.value <= estimate.ci_high
        assert estimate == stats.interval(name, columns)   # seeded: the same every time
    assert stats.interval("perplexity", columns).value == pytest.approx(np.exp(columns.nll.sum() / columns.tokens.sum()))
    perfect = Columns.of([scoring.score(r, r) for _, r in EN * 5])
    delta = stats.paired_delta("chrf", perfect, Columns.of(samples))
    assert delta.delta > 0 and delta.significant and delta.ci_low > 0
    same = stats.paired_delta("rougeL", Columns.of(samples), Columns.of(samples))
    assert (same.delta, same.ci_low, same.ci_high, same.significant) == (0, 0, 0, False)
    assert stats.signs(np.array([1.0, 0.5, 2.0]), np.array([0.5, 0.5, 3.0])) == ["better", "same", "worse"]
