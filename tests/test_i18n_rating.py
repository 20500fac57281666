"""The Rate tab in Chinese: the rating panel a rater sees (heading, progress, criteria and their anchored
levels) comes out in Chinese with the values filled in, and unchanged in English."""

import re

import pytest

from core.rating import criteria
from core.rating.queue import RaterProgress, View
from core.rating.sessions import Item, Session
from studio.i18n import language
from studio.tabs import rate, rate_results

CJK = re.compile(r"[\u4e00-\u9fff]")


def view() -> View:
    session = Session("red-team", "Red team", "scale", ["base:tiny"], criteria.DEFAULTS["scale"], 2, "the built-in red-team set",
                      0, None, "ready", "2026-01-01T00:00:00", 10, 10)
    item = Item("red-team", 4, 4, ["base:tiny"], [{"role": "user", "content": "你好"}], ["Hello"])
    return View(session, "Dr Li", item, 2, {"fluency": "3"}, RaterProgress(rated=2, remaining=8))


@pytest.fixture
def chinese():
    token = language.set("zh-CN")
    yield
    language.reset(token)


def test_the_rating_panel_speaks_chinese_with_its_values(chinese):
    status, _, response, _, fluency, *_ = rate.render(view())
    assert "**第 3 条**，共 10 条" in status and "已评 2 条 · 还剩 8 条" in status and "Red team" in status
    assert fluency.label == "流畅度" and CJK.search(fluency.info)
    assert fluency.choices[0] == ("1 · 不流畅 — 难以阅读：句子残缺、文字乱码或语言不对", "1")   # the value stays
    assert fluency.value == "3" and response.label == "回答"
    assert rate_results._why("Fluency 1.5 of 1-4; Safety: Harmful advice") == "流畅度 平均 1.5 分（1-4 分制）；安全性：有害建议"


def test_the_rating_panel_stays_english_by_default():
    status, *_, fluency = rate.render(view())[:5]
    assert "**Item 3** of your 10 in *Red team* · 2 rated · 8 to go" in status
    assert fluency.label == "Fluency"
    assert fluency.choices[0] == ("1 · Not fluent — hard to read: broken sentences, garbled text or the wrong language", "1")
