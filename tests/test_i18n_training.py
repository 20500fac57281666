"""The Configure and Train tabs speak Chinese: the status line polled every second, the banner of a failed
run (its core message matched back to a template) and the pre-flight findings, and stay English by default."""

import re

import pytest

from core.planning import preflight
from core.runs.records import RunStatus
from studio.i18n import language
from studio.tabs.configure import findings_markdown
from studio.tabs.train import banner, progress_html

CJK = re.compile(r"[\u4e00-\u9fff]")
RUNNING = RunStatus("r1", "clinic-faq", "running", step=12, total_steps=30, epoch=1.2, eta_s=200, loss=1.2345,
                    message="Training: step 12/30, loss 1.2345")
FAILED = RunStatus("r2", "clinic-faq", "failed", message="x", error={
    "kind": "config", "message": "The run has done 40 steps, but its settings now give only 30 in all.",
    "fix": "Resume with a larger train.max_steps or train.epochs."})
FINDING = preflight.Finding("warning", "train.learning_rate",
                            "Learning rate 0.5 is outside the usual LoRA range (1e-06 to 0.001): the loss will "
                            "likely jump around or blow up. Try 1e-4 to 3e-4.")


@pytest.fixture
def chinese():
    token = language.set("zh-CN")
    yield
    language.reset(token)


def test_status_line_banner_and_findings_in_chinese(chinese):
    line = progress_html(RUNNING)
    assert "第 12 步，共 30 步" in line and "损失 1.2345" in line and "预计剩余 约 3 分钟" in line
    assert "训练中：第 12/30 步，损失 1.2345" in banner(RUNNING)
    failed = banner(FAILED)
    assert "已完成 40 步" in failed and "按现在的设置总共只有 30 步" in failed and "train.max_steps" in failed
    warning = findings_markdown([FINDING])
    assert CJK.search(warning) and "学习率" in warning and "0.5" in warning and "1e-06" in warning


def test_the_same_texts_stay_english_by_default():
    assert "Step 12 of 30 · epoch 1.20 · ETA about 3 min · loss 1.2345" in progress_html(RUNNING)
    assert banner(RUNNING).endswith("— Training: step 12/30, loss 1.2345")
    assert findings_markdown([FINDING]) == f"- ⚠ Warning in **Learning rate**: {FINDING.message}"
