"""The whole path of a first-time user in one browser session, on the default model: the first half in
Chinese (the browser asks for zh-CN), the second in English after the language switch.

Upload a messy file, clean it, configure with the CPU quick preset, train a short run (简体中文); evaluate,
rate two items, chat with the tuned model (its reply must stream), export it (English). Then every tab is photographed in both
languages (build/screenshots/journey-<tab>-<lang>.png, the README's pictures), the Chinese page is checked
for English words left in its interface, and the page's controls for names, keyboard focus and contrast.
"""

import re
import time
from pathlib import Path

import pytest
from controls import open_tab, page_drawn, pick, set_number
from gradio_client import Client
from playwright.sync_api import Page, expect

from core.data.store import DEMO_DATASET_FILE
from studio.i18n_audit import english_words

pytestmark = pytest.mark.e2e
SLOW = 180_000   # ms: a job on the default model on a busy two-core machine
TABS = ["data", "configure", "train", "evaluate", "rate", "chat", "export", "demo"]
CJK = re.compile(r"[\u4e00-\u9fff]")
RUN = "journey"
BROWSER_LOCALE = "zh-CN"
# Names, not interface words: those this test gave, and the built-in demo dataset's stored name.
USER_DATA = {"journey", "journey-check", "demo-clinic-faq", "Ana", "default", "Demo", "clinic", "patient", "FAQ", "zh",
             "en"}
# The interface's words: a tab's text without what users wrote or models answered (table rows, chat bubbles,
# code), which may be in any language.
INTERFACE_TEXT = """(root) => {
    const copy = root.cloneNode(true);
    const content = "tbody, .virtual-body, [data-testid=bot], [data-testid=user], pre, code, .cm-editor, .notranslate";
    copy.querySelectorAll(content + ", textarea, input").forEach((node) => node.remove());
    document.body.appendChild(copy);
    const text = copy.innerText;
    copy.remove();
    return text;
}"""


def wait_until(check, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


# Records every text the newest reply bubble shows, as the page draws it: sampling from the test would miss
# the partial replies of a fast machine, where the whole reply streams in a fraction of a second.
RECORD_REPLIES = """() => {
    const history = document.querySelector('#chat-history');
    const earlier = history.querySelectorAll('[data-testid=bot]').length;
    window.replyTexts = [];
    new MutationObserver(() => {
        const bubbles = history.querySelectorAll('[data-testid=bot]');
        if (bubbles.length <= earlier) return;
        const text = bubbles[bubbles.length - 1].innerText.trim();
        const seen = window.replyTexts;
        if (text && text !== '…' && seen[seen.length - 1] !== text) seen.push(text);
    }).observe(history, {subtree: true, childList: true, characterData: true});
}"""


def streamed_reply(page: Page, send, timeout_s: float = 180) -> list[str]:
    """Every text the reply showed while `send()` made it stream, until it has not changed for two seconds."""
    page.evaluate(RECORD_REPLIES)
    send()
    seen: list[str] = []
    last_change = deadline = time.monotonic()
    deadline += timeout_s
    while time.monotonic() < deadline:
        now = page.evaluate("window.replyTexts")
        if now != seen:
            seen, last_change = now, time.monotonic()
        if seen and time.monotonic() - last_change > 2:
            break
        time.sleep(0.1)
    return seen


def chinese_half(page: Page, studio, tmp_path: Path) -> str:
    expect(page.locator("#tab-data-button")).to_contain_text("数据", timeout=30_000)   # the browser's language
    expect(page.locator("#language input[value=zh-CN]")).to_be_checked()

    messy = tmp_path / "journey.jsonl"
    messy.write_bytes(DEMO_DATASET_FILE.read_bytes() + b'{"prompt": 42, "response": "x"}\nnot json at all\n')
    page_drawn(page)
    open_tab(page, "data")
    page.locator("#ds-upload input[type=file]").set_input_files(str(messy))
    expect(page.locator("#ds-upload-report")).to_contain_text("351", timeout=SLOW)
    expect(page.locator("#ds-upload-report")).to_contain_text(CJK)
    expect(page.locator("#ds-counts")).to_contain_text("journey/v1", timeout=SLOW)
    page.locator("#ds-save").click()
    expect(page.locator("#ds-save-report")).to_contain_text(re.compile(r"(v|版本 ?)2"), timeout=SLOW)

    open_tab(page, "configure")
    expect(page.locator("#preflight-panel")).to_contain_text(CJK, timeout=60_000)
    pick(page, "cfg-data-train-path", re.compile(r"journey\D*2\D"))
    pick(page, "cfg-preset", re.compile("CPU"))
    expect(page.locator("#config-yaml")).to_contain_text("max_steps: 30", timeout=60_000)   # the preset is in
    page.locator("#cfg-name textarea").fill(RUN)
    set_number(page, "cfg-train-max-steps", 4)
    set_number(page, "cfg-train-max-seq-length", 256)
    page.locator("#cfg-section-generation").get_by_role("button").first.click()   # open the section
    set_number(page, "cfg-generation-max-new-tokens", 32)   # short replies: evaluation and chat stay quick
    expect(page.locator("#config-yaml")).to_contain_text("max_steps: 4", timeout=60_000)
    expect(page.locator("#preflight-panel")).to_contain_text("4", timeout=60_000)

    open_tab(page, "train")
    page.locator("#train-start").click()
    client = Client(studio.url, analytics_enabled=False, verbose=False)
    status = wait_until(lambda: (s := client.predict(api_name="/train_status")) and s["state"] in
                        ("finished", "failed", "interrupted") and s, 600, "the run to finish")
    assert status["state"] == "finished", status
    expect(page.locator("#train-banner")).to_contain_text(CJK, timeout=60_000)
    return status["run_id"]


def english_half(page: Page, run_id: str) -> None:
    page.locator("#language").get_by_text("English").click()
    expect(page.locator("#tab-evaluate-button")).to_have_text("Evaluate", timeout=30_000)

    open_tab(page, "evaluate")
    page.locator("#eval-refresh").click()
    expect(page.locator("#eval-run input")).to_have_value(re.compile(RUN), timeout=SLOW)
    set_number(page, "eval-limit", 3)
    page.locator("#eval-start").click()
    expect(page.locator("#eval-progress")).to_contain_text("Finished", timeout=SLOW)
    expect(page.locator("#eval-summary")).to_contain_text("chrF", timeout=SLOW)

    open_tab(page, "rate")
    page.get_by_role("tab", name="Sessions").click()
    page.locator("#rate-new-name textarea").fill("journey-check")
    pick(page, "rate-new-models", re.compile(f"Run '{RUN}'"))
    expect(page.locator("#rate-new-source")).to_contain_text("A dataset version", timeout=30_000)
    page.locator("#rate-new-source").get_by_text(re.compile("^A dataset version")).click()
    pick(page, "rate-new-dataset", re.compile(r"journey\D*2\D"))
    set_number(page, "rate-new-max-prompts", 2)
    set_number(page, "rate-new-max-tokens", 8)
    page.locator("#rate-create").click()
    expect(page.locator("#rate-job-status")).to_contain_text("Ready to rate", timeout=SLOW)
    page.get_by_role("tab", name="Rate responses").click()
    page.locator("#rate-rater textarea").fill("Ana")
    pick(page, "rate-session", re.compile("journey-check"))
    page.locator("#rate-start").click()
    for number in (1, 2):   # by keyboard: a digit per criterion (fluency, relevance, safety), then Right saves
        expect(page.locator("#rate-status")).to_contain_text(f"Item {number} of", timeout=SLOW)
        expect(page.locator("#rate-criterion-1 input:checked")).to_have_count(0, timeout=SLOW)
        for slot, key in enumerate(("4", "3", "1"), start=1):
            page.keyboard.press(key)
            expect(page.locator(f"#rate-criterion-{slot} input:checked")).to_have_count(1)
        page.keyboard.press("ArrowRight")
    expect(page.locator("#rate-status")).to_contain_text("2 rated", timeout=SLOW)

    open_tab(page, "chat")
    pick(page, "chat-model", re.compile(f"Run '{RUN}'"))
    page.locator("#chat-input textarea").fill("In two sentences, why should I wash my hands?")
    seen = streamed_reply(page, page.locator("#chat-send").click)
    final = seen[-1] if seen else ""
    assert len(final) > 20, f"no reply: {seen}"
    assert any(len(partial) < len(final) for partial in seen), f"the reply did not stream: {seen}"
    assert all(final.startswith(partial[: len(partial) // 2]) for partial in seen)

    open_tab(page, "export")
    pick(page, "export-run", re.compile(RUN))
    page.locator("#export-start").click()
    expect(page.locator("#exports-table")).to_contain_text(re.compile("complete|ready|finished", re.I), timeout=SLOW)


def photograph_every_tab(page: Page, screenshot, lang: str) -> tuple[dict[str, str], dict[str, dict]]:
    """Each tab's screenshot; returns each tab's visible interface text (for the English check) and its
    accessibility problems (unnamed controls, controls out of the keyboard's reach, low contrast)."""
    label = "English" if lang == "en" else "简体中文"
    expect(page.locator("#tab-data-button")).to_have_text(re.compile("Data|数据"), timeout=30_000)
    page.wait_for_timeout(1000)   # a page still loading would put its own language back over the click
    page.locator("#language").get_by_text(label, exact=True).click()
    expect(page.locator("#tab-data-button")).to_have_text("Data" if lang == "en" else "数据", timeout=30_000)
    # A fresh page in the chosen language (the browser remembers it): every tab drawn from the workspace, so the
    # pictures hold no text left over from the other language's half of the journey.
    page.reload()
    expect(page.locator("#language input[value='" + lang + "']")).to_be_checked(timeout=30_000)
    expect(page.locator("#tab-data-button")).to_have_text("Data" if lang == "en" else "数据", timeout=30_000)
    page.wait_for_timeout(2000)   # the page-load events
    texts, problems = {}, {}
    for key in TABS:
        open_tab(page, key)
        page.wait_for_timeout(800)   # the tab's own refresh on selection
        screenshot(page, f"journey-{key}-{lang}")
        texts[key] = page.locator(f"#tab-{key}").evaluate(INTERFACE_TEXT)
        body = page.locator("body")
        found = {"unnamed": unnamed_controls(page), "unreachable": body.evaluate(UNREACHABLE),
                 "low contrast": body.evaluate(LOW_CONTRAST)}
        if any(found.values()):
            problems[key] = {kind: items for kind, items in found.items() if items}
    return texts, problems


def keyboard_walk(page: Page, presses: int = 60) -> list[str]:
    """The ids (or tags) of what Tab focuses, one press after another, starting at the language switch."""
    page.locator("#language input").first.focus()
    reached = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.id || document.activeElement.closest('[id]')?.id "
                                     "|| document.activeElement.tagName"))
    return reached


def test_the_whole_journey_in_chinese_then_english(page: Page, screenshot, studio, tmp_path: Path):
    run_id = chinese_half(page, studio, tmp_path)
    english_half(page, run_id)
    _, english_problems = photograph_every_tab(page, screenshot, "en")
    chinese, chinese_problems = photograph_every_tab(page, screenshot, "zh-CN")
    left = {key: sorted(set(english_words(text)) - USER_DATA) for key, text in chinese.items()}
    left = {key: words for key, words in left.items() if words}
    assert left == {}, f"English words in the Chinese interface: {left}"
    assert english_problems == {} and chinese_problems == {}

    # The keyboard alone: Tab goes from the language switch through the guide and every tab to the open tab's
    # controls (upload, check, save, cancel); Enter on a focused tab opens it.
    open_tab(page, "data")
    reached = keyboard_walk(page)
    tabs = [f"tab-{key}-button" for key in TABS]
    assert set(tabs) <= set(reached), reached
    after_tabs = reached[max(reached.index(tab) for tab in tabs):]
    assert {"ds-dataset", "ds-upload", "ds-check", "ds-save", "ds-cancel"} <= set(after_tabs), reached
    page.locator("#tab-configure-button").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#tab-configure-button")).to_have_attribute("aria-selected", "true")


# WCAG 2.1 contrast of every visible text against the background it is drawn on (the first opaque one up the
# tree; text over images or gradients is not judged): 4.5:1, or 3:1 for large text (24 px, or 18.66 px bold).
LOW_CONTRAST = """(root) => {
    const channel = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
    const canvas = Object.assign(document.createElement("canvas"), {width: 1, height: 1});
    const paint = canvas.getContext("2d", {willReadFrequently: true});
    const rgba = (css) => {   // any CSS colour (rgb, oklch, color-mix…) as sRGB 0-255 and alpha 0-1
        paint.clearRect(0, 0, 1, 1);
        paint.fillStyle = css;
        paint.fillRect(0, 0, 1, 1);
        const [r, g, b, a] = paint.getImageData(0, 0, 1, 1).data;
        return [r, g, b, a / 255];
    };
    const background = (node) => {
        for (; node; node = node.parentElement) {
            const style = getComputedStyle(node);
            if (style.backgroundImage !== "none") return null;
            const [r, g, b, a = 1] = rgba(style.backgroundColor);
            if (a >= 0.99) return [r, g, b];
        }
        return [255, 255, 255];
    };
    const found = [];
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
        const text = walker.currentNode.textContent.trim();
        const node = walker.currentNode.parentElement;
        if (!text || !node || !node.offsetParent || node.closest("svg, .js-plotly-plot, [aria-hidden=true]")) continue;
        const style = getComputedStyle(node);
        if (style.visibility !== "visible" || Number(style.opacity) < 0.99) continue;
        const [r, g, b, a = 1] = rgba(style.color);
        const behind = background(node);
        if (!behind || a < 0.99) continue;
        const [light, dark] = [luminance([r, g, b]), luminance(behind)].sort((x, y) => y - x);
        const ratio = (light + 0.05) / (dark + 0.05);
        const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
        const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
        if (ratio < needed) found.push(`${text.slice(0, 40)} (${ratio.toFixed(2)}:1, needs ${needed})`);
    }
    return [...new Set(found)];
}"""
# Controls a mouse user can use but a keyboard cannot reach (taken out of the tab order).
UNREACHABLE = """(root) => [...root.querySelectorAll("button, input, select, textarea, a[href], [role=button], [role=tab]")]
    .filter((node) => node.offsetParent && !node.disabled && node.tabIndex < 0 && node.type !== "file"
                      && !node.closest("[aria-hidden=true]"))
    .map((node) => node.id || node.getAttribute("aria-label") || node.outerHTML.slice(0, 80))"""
ROLES_NEEDING_NAMES = {"textbox", "combobox", "spinbutton", "checkbox", "radio", "slider", "button", "tab", "listbox",
                       "searchbox", "switch"}


def unnamed_controls(page: Page) -> list[str]:
    """Controls in the browser's accessibility tree that a screen reader would announce without a name."""
    session = page.context.new_cdp_session(page)
    nodes = session.send("Accessibility.getFullAXTree")["nodes"]
    session.detach()
    unnamed = []
    for node in nodes:
        role = node.get("role", {}).get("value")
        if node.get("ignored") or role not in ROLES_NEEDING_NAMES:
            continue
        if not str(node.get("name", {}).get("value", "")).strip():
            unnamed.append(f"{role} (backend node {node.get('backendDOMNodeId')})")
    return unnamed
