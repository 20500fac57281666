"""The guide, the Demo tab's scores and the Evaluate tab's progress in Chinese and in English: what core writes
in English (the guide's sentences, verdicts, a job's title and summary) comes out translated with its values
in place, and unchanged in English."""

import re
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from core import guide
from core.data import store
from core.evaluation.showcase import Estimate, EvaluationHeadline, MetricResult
from core.workspace import Workspace
from studio import guide as studio_guide
from studio.i18n import language
from studio.tabs import demo, evaluate

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def speak() -> Iterator:
    tokens = []

    def set_language(lang: str) -> None:
        tokens.append(language.set(lang))
    yield set_language
    for token in reversed(tokens):
        language.reset(token)


def test_the_guide_speaks_the_readers_language(workspace: Workspace, speak):
    store.ensure_demo_dataset(workspace)
    steps = guide.journey(workspace)

    speak("zh-CN")
    *buttons, sentence, _ = studio_guide.render(steps)
    assert [button.value for button in buttons][:2] == ["1. 数据", "2. 配置"]
    assert sentence.startswith("**第 1 步（共 7 步）· 数据。**") and "**检查此版本**" in sentence
    assert "Demo: clinic patient FAQ (zh/en) · v1" in studio_guide.render(steps[1:])[-2]   # the data's name stays
    assert "**适配器** — " in studio_guide.glossary_markdown()

    speak("en")
    *buttons, sentence, _ = studio_guide.render(steps)
    assert buttons[0].value == "1. Data" and sentence.startswith("**Step 1 of 7 · Data.** In **Data**, pick the demo")


def test_scores_verdicts_and_progress_are_translated_with_their_values(speak):
    chrf = MetricResult("chrF", "how closely the answers match the ideal answers, character by character (0-100, "
                        "higher is better)", Estimate(61.2, 55.0, 67.1), Estimate(12.4, 10.0, 15.0),
                        Estimate(48.8, 40.1, 57.0))
    headline = EvaluationHeadline("eval-1", "validation split of run 'r1' (7 rows)", 7, "the base model tiny", [chrf])
    status = SimpleNamespace(done=3, total=10, title="evaluation of the base model and run 'r1'", state="running",
                             message="Loading the model tiny", active=True, eta_s=None, error=None)

    speak("zh-CN")
    scores = demo.evaluation_markdown(headline)
    assert CJK.search(scores) and "在 7 个留出提示上（训练任务“r1”的验证集（7 行））" in scores
    assert "| chrF | 12.4（95% CI 10.0 至 15.0） | 61.2（95% CI 55.0 至 67.1） | +48.8（95% CI +40.1 至 +57.0） | 变好 |" \
        in scores
    progress = evaluate.progress_html(status)
    assert "运行中 · 评估基础模型和训练任务 &#x27;r1&#x27; · 进度 3/10 · 正在加载模型 tiny" in progress

    speak("en")
    scores = demo.evaluation_markdown(headline)
    assert not CJK.search(scores) and "On 7 held-out prompts (validation split of run 'r1' (7 rows))" in scores
    assert "| chrF | 12.4 (95% CI 10.0 to 15.0) | 61.2 (95% CI 55.0 to 67.1) | +48.8 (95% CI +40.1 to +57.0) | better |" \
        in scores
    assert "Running · evaluation of the base model and run &#x27;r1&#x27; · 3 of 10 done" in evaluate.progress_html(status)
