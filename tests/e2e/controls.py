"""How the browser tests work Gradio's controls, the way a user does: open a tab, pick from a dropdown,
type a number."""

import re

from playwright.sync_api import Page, expect


def page_drawn(page: Page) -> None:
    """Wait until the page-load events have drawn the workspace (the Data tab's version picker holds one), as a
    user sees the page before acting on it; a file dropped before that can lose its selection to the load."""
    expect(page.locator("#ds-version input")).to_have_value(re.compile(r"\S"), timeout=60_000)


def open_tab(page: Page, key: str) -> None:
    page.locator(f"#tab-{key}-button").click()


def pick(page: Page, dropdown_id: str, option: str | re.Pattern) -> None:
    """Open the dropdown and click the first option whose name contains `option` (or matches the pattern)."""
    page.locator(f"#{dropdown_id} input").click()
    wanted = page.locator(f"#{dropdown_id}").get_by_role("option", name=option).first
    try:
        wanted.wait_for(timeout=30_000)
    except Exception as error:
        shown = page.locator(f"#{dropdown_id}").get_by_role("option").all_inner_texts()
        raise AssertionError(f"no option {option!r} in #{dropdown_id}: {shown}") from error
    wanted.click()


def set_number(page: Page, elem_id: str, value: float) -> None:
    box = page.locator(f"#{elem_id} input").first
    box.fill(str(value))
    box.blur()
    expect(box).to_have_value(str(value))
