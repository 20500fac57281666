"""What a run trains on: the supervision guard, truncation, dataset mixing, keyword weights, packing."""

from pathlib import Path

import pytest
import torch
from test_data_store import faq_rows
from test_train import FAQ, tiny_config, write_rows
from tiny import build_tokenizer
from transformers import AutoModelForCausalLM

from core.errors import DataError
from core.models.templates import IGNORE_INDEX
from core.training import packing, trainset
from core.training.steps import StepPlan
from core.training.train import fresh_accelerator, token_losses, train_step
from core.workspace import Workspace


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


@pytest.fixture(scope="module")
def model(tiny_model_dir: Path):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()


def build(workspace: Workspace, tokenizer, tiny_model_dir: Path, data: Path, *overrides: str) -> trainset.TrainingData:
    return trainset.build(tiny_config(tiny_model_dir, data, *overrides), tokenizer, workspace)


def test_guard_names_rows_without_anything_to_learn(workspace, tiny_model_dir, tmp_path):
    forgetful = build_tokenizer()  # a template that drops the assistant's turns trains nothing
    forgetful.chat_template = "{% for m in messages %}{% if m['role'] == 'user' %}Q: {{ m['content'] }}\n{% endif %}{% endfor %}"
    data = write_rows(tmp_path / "faq.jsonl")
    with pytest.raises(DataError) as caught:
        build(workspace, forgetful, tiny_model_dir, data, "data.validation_ratio=0")
    message = str(caught.value)
    assert message.startswith("4 conversation(s) have nothing to learn from: faq.jsonl row 1 (the chat template "
                              "leaves none of its reply to train on)") and "and 1 more" in message
    assert caught.value.fix == "Choose a built-in layout in model.template."


def test_truncation_policy_is_explicit_and_reported(workspace, tokenizer, tiny_model_dir, tmp_path):
    data = write_rows(tmp_path / "faq.jsonl", [("Short?", "Yes."), ("Short too?", "A much longer answer. " * 8)])
    lengths = sorted(len(e) for e in build(workspace, tokenizer, tiny_model_dir, data, "data.validation_ratio=0").train)
    limit = lengths[0] + 5
    truncated = build(workspace, tokenizer, tiny_model_dir, data, "data.validation_ratio=0", f"train.max_seq_length={limit}")
    assert truncated.report.truncated == 1 and max(len(e) for e in truncated.train) == limit
    dropped = build(workspace, tokenizer, tiny_model_dir, data, "data.validation_ratio=0",
                    f"train.max_seq_length={limit}", "train.truncation=drop")
    assert dropped.report.dropped_too_long == 1 and len(dropped.train) == 1
    # A prompt longer than the limit leaves nothing to learn: refused with the cause, not trained on.
    with pytest.raises(DataError, match="its prompt alone is longer than train.max_seq_length=20") as caught:
        build(workspace, tokenizer, tiny_model_dir, data, "data.validation_ratio=0", "train.max_seq_length=20")
    assert "train.truncation to drop" in caught.value.fix


def test_the_system_prompt_reaches_every_conversation(workspace, tokenizer, tiny_model_dir, tmp_path):
    data = write_rows(tmp_path / "faq.jsonl")
    built = build(workspace, tokenizer, tiny_model_dir, data, "data.validation_ratio=0.25",
                  "data.system_prompt=You are the front desk of a clinic.")
    for example in built.train + built.validation:
        text = tokenizer.decode(example.input_ids)
        assert text.startswith("<|im_start|>system\nYou are the front desk of a clinic.<|im_end|>")
        assert "You are the front desk" not in tokenizer.decode([t for t in example.labels if t != IGNORE_INDEX])


def test_dataset_mix_follows_the_shares(workspace, tokenizer, tiny_model_dir, tmp_path):
    base = write_rows(tmp_path / "base.jsonl", [(f"Question {i}?", f"Answer {i}.") for i in range(40)])
    hard = write_rows(tmp_path / "hard.jsonl", [(prompt, f"Careful answer {i}.") for i, (prompt, _) in enumerate(FAQ)]
                      + [("Is there parking?", "Behind the clinic.")])
    mixed = build(workspace, tokenizer, tiny_model_dir, base, f"data.mix={{{base}: 8, {hard}: 2}}",
                  "data.validation_ratio=0")
    sources = [e.source.split(" row ")[0] for e in mixed.train]
    assert sources.count("base.jsonl") == 40 and sources.count("hard.jsonl") == 10  # 8:2
    hard_rows = [e.source for e in mixed.train if e.source.startswith("hard")]
    assert all(hard_rows.count(row) == 2 for row in set(hard_rows))  # small source repeated evenly
    assert mixed.report.sources == [trainset.SourceCount("base.jsonl", rows=40, train_rows=40),
                                    trainset.SourceCount("hard.jsonl", rows=5, train_rows=10)]
    # Validation rows are held out of each file before mixing, so none is also trained on.
    held = build(workspace, tokenizer, tiny_model_dir, base, f"data.mix={{{base}: 8, {hard}: 2}}",
                 "data.validation_ratio=0.2")
    assert {e.source for e in held.validation}.isdisjoint(e.source for e in held.train)
    assert trainset.mix_counts([32, 4], [8, 2]) == [32, 8] and trainset.mix_counts([10, 100], [1, 1]) == [10, 10]


def distinct_pairs(count: int) -> list[tuple[str, str]]:
    return [(row["messages"][0]["content"], row["messages"][1]["content"]) for row in faq_rows(count)]


def sides(built: trainset.TrainingData) -> tuple[set[int], set[int]]:
    """The row numbers (1-based, in the file) of the training and the validation examples."""
    def rows(examples: list[trainset.Example]) -> set[int]:
        return {int(example.source.rsplit(" row ", 1)[1]) for example in examples}
    return rows(built.train), rows(built.validation)


def test_validation_keeps_near_duplicate_prompts_on_one_side(workspace, tokenizer, tiny_model_dir, tmp_path):
    pairs = distinct_pairs(60)
    for n in range(0, 20, 2):   # rows n+1 and n+2 ask the same question, one with a typo
        pairs[n + 1] = (pairs[n][0] + "?", pairs[n + 1][1])
    data = write_rows(tmp_path / "faq.jsonl", pairs)
    held = set()
    for seed in range(4):   # a random split would part some of the ten pairs (all ten together: p ≈ 0.02 a seed)
        built = build(workspace, tokenizer, tiny_model_dir, data, "data.validation_ratio=0.2", f"train.seed={seed}")
        train, validation = sides(built)
        assert len(validation) == 12 and train | validation == set(range(1, 61)) and not train & validation
        assert all((n + 1 in validation) == (n + 2 in validation) for n in range(0, 20, 2)), (seed, validation)
        assert built.report.validation_kept_together == 20
        held.add(frozenset(validation))
    assert len(held) == 4   # each seed its own split
    again = build(workspace, tokenizer, tiny_model_dir, data, "data.validation_ratio=0.2", "train.seed=3")
    assert sides(again)[1] == validation   # the same seed, the same split


def test_what_the_validation_split_holds_out(workspace, tokenizer, tiny_model_dir, tmp_path):
    three = write_rows(tmp_path / "three.jsonl", FAQ[:3])
    assert [len(sides(build(workspace, tokenizer, tiny_model_dir, three, f"data.validation_ratio={ratio}"))[1])
            for ratio in (0, 0.05, 0.5)] == [0, 1, 2]   # nothing at 0; at least one row when a share is asked
    given = write_rows(tmp_path / "given.jsonl", FAQ[3:])
    with_file = build(workspace, tokenizer, tiny_model_dir, three, "data.validation_ratio=0.5",
                      f"data.validation_path={given}")
    assert sides(with_file)[0] == {1, 2, 3} and [e.source for e in with_file.validation] == ["given.jsonl row 1"]
    # Every question asked five times: one whole question is held out (5 rows for a target of 4)…
    repeated = build(workspace, tokenizer, tiny_model_dir, write_rows(tmp_path / "faq.jsonl", repeat=5))
    train, validation = sides(repeated)
    assert len(validation) == 5 and len({(n - 1) % len(FAQ) for n in validation}) == 1
    assert not {(n - 1) % len(FAQ) for n in validation} & {(n - 1) % len(FAQ) for n in train}
    # …but not when a whole question is far more than the share asked: refused, naming the file and the fixes.
    with pytest.raises(DataError, match="faq10.jsonl: No validation rows can be held out of 40 rows") as caught:
        build(workspace, tokenizer, tiny_model_dir, write_rows(tmp_path / "faq10.jsonl", repeat=10),
              "data.validation_ratio=0.1")
    assert "data.validation_path" in caught.value.fix and "set data.validation_ratio to 0" in caught.value.fix


def test_keyword_weighting_changes_the_loss_exactly_as_specified(workspace, tokenizer, tiny_model_dir, tmp_path, model):
    data = write_rows(tmp_path / "faq.jsonl", FAQ[:2])
    plain = build(workspace, tokenizer, tiny_model_dir, data, "data.validation_ratio=0")
    weighted = build(workspace, tokenizer, tiny_model_dir, data, "data.validation_ratio=0",
                     "data.keywords=[EIGHT, evening]", "train.keyword_loss_weight=3")
    example = weighted.train[0]
    marked = [token for token, w in zip(example.input_ids, example.weights) if w == 3.0]
    assert tokenizer.decode(marked).lower().replace(" ", "") in ("eight", "evening")  # case-insensitive match
    assert all(w == 1.0 for e in plain.train for w in e.weights)
    accelerator = fresh_accelerator("no")

    # Expected: mean over supervised tokens of weight x cross-entropy, divided by the sum of weights.
    batch = packing.packed(weighted.train)
    losses, weights = token_losses(model, batch)
    expected_weighted = float((losses * weights).sum() / weights.sum())
    expected_plain = float(losses.mean())
    assert int((weights == 3.0).sum()) >= 2 and expected_weighted != pytest.approx(expected_plain, abs=1e-3)
    loss_plain, _ = train_step(model, accelerator, [plain.train], True, 10 ** 6, 0)
    loss_weighted, _ = train_step(model, accelerator, [weighted.train], True, 10 ** 6, 0)
    model.zero_grad()
    assert loss_plain == pytest.approx(expected_plain, abs=1e-5)
    assert loss_weighted == pytest.approx(expected_weighted, abs=1e-5)


def test_packed_row_loss_equals_the_per_conversation_losses(workspace, tokenizer, tiny_model_dir, tmp_path, model):
    data = write_rows(tmp_path / "faq.jsonl")
    examples = build(workspace, tokenizer, tiny_model_dir, data, "data.validation_ratio=0").train
    with torch.no_grad():
        one_by_one = torch.cat([token_losses(model, packing.packed([e]))[0] for e in examples])
        row = packing.packed(examples)
        assert row.input_ids.shape == (1, sum(len(e) for e in examples)) and row.attention_mask is None
        together = token_losses(model, row)[0]
        assert torch.allclose(together, one_by_one, atol=1e-5)
        assert float(together.mean()) == pytest.approx(float(one_by_one.mean()), abs=1e-6)
        # Negative control: with an attention mask the model cannot see the boundaries, so the
        # conversations attend to each other and the losses differ.
        leaky = packing.ForwardBatch(row.input_ids, row.position_ids, torch.ones_like(row.input_ids), row.targets,
                                     row.weights, row.real_tokens)
        assert not torch.allclose(token_losses(model, leaky)[0], one_by_one, atol=1e-3)
        # Padded batches (the classic way) give the same losses too, at the price of padding.
        padded = packing.padded(examples, tokenizer.pad_token_id)
        assert padded.real_tokens < padded.input_ids.numel()
        assert torch.allclose(token_losses(model, padded)[0], one_by_one, atol=1e-5)
    # The last token of one conversation never predicts the first token of the next.
    ends = torch.tensor([len(e) for e in examples]).cumsum(0) - 1
    assert (row.targets[0, ends] == IGNORE_INDEX).all()
    # The engine's own attention (causal sdpa per conversation, no mask) gives the same losses.
    own = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    assert packing.use_packed_attention(own, 1024) and own.config._attn_implementation == packing.PACKED_ATTENTION
    with torch.no_grad():
        assert torch.allclose(token_losses(own, row)[0], one_by_one, atol=1e-5)
    assert packing.forward_batches(examples, True, packing.ONE_ROW, 0)[0].input_ids.shape == row.input_ids.shape
    windowed = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    windowed.config.sliding_window = 8  # a window shorter than a conversation: not exact, so not used
    assert not packing.use_packed_attention(windowed, 1024) and windowed.config._attn_implementation == "sdpa"


def test_rows_are_packed_first_fit_decreasing(tokenizer):
    def example(n):
        return trainset.Example([1] * n, [1] * n, [1.0] * n, f"{n}")

    rows = packing.pack_rows([example(n) for n in (10, 60, 30, 40, 90, 20)], row_tokens=100)
    assert [[len(e) for e in row] for row in rows] == [[90, 10], [60, 40], [30, 20]]


def test_batches_are_seeded_grouped_by_length_and_shared_between_processes():
    lengths = [5, 100, 7, 98, 6, 97, 8, 99]
    grouped = packing.batch_order(lengths, 2, seed=1, group_by_length=True)
    assert sorted(i for batch in grouped for i in batch) == list(range(8))
    assert all(abs(lengths[a] - lengths[b]) < 10 for a, b in grouped)
    assert grouped == packing.batch_order(lengths, 2, seed=1, group_by_length=True)
    assert grouped != packing.batch_order(lengths, 2, seed=2, group_by_length=True)

    settings = tiny_config(Path("m"), Path("d"), "train.batch_size=2", "train.epochs=1", "train.max_steps=-1").train
    plan = StepPlan.create(lengths, settings, processes=2)
    assert plan.steps_per_epoch == 2 and plan.total_steps == 2
    seen = [i for step in (1, 2) for process in (0, 1) for batch in plan.batches(step, process) for i in batch]
    assert sorted(seen) == list(range(8))  # each process its own share, together the whole epoch
