"""The lessons side panel in a real headless Chromium: open the panel, open a lesson,
answer a checkpoint wrong and then right, and read the feedback, at 1280x800 and in a
420 px wide window. Screenshots go to ``test-artifacts/`` as the playground's do.

The server, the browser and the page come from the playground's browser tests (Debian's
Chromium driven by Playwright; the tests skip, saying why, where it is missing).
"""

from __future__ import annotations

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("playwright.sync_api")

import test_web_browser as playground  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

# The playground's own server, browser and page (1280x800, no error raised by the page).
server_url, browser, page = playground.server_url, playground.browser, playground.page
ARTIFACTS = playground.ARTIFACTS

MAIN_IDEAS = "Main ideas: one parameter learned by the chain rule"
# The seed's first step: step size -1.5655108381, new b3 1.5655108381 (StatQuest's b3).
STEP_SIZE_2 = "-1.57"
NEW_B3 = "1.5655"


def screen(page, name: str) -> None:
    """A screenshot of the window as the learner sees it now (the panel stays in place
    while the page scrolls, so a full-page shot would cut it)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000


def open_lesson(page, title: str) -> None:
    toggle = page.get_by_role("button", name="Lessons", exact=True)
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    panel = page.get_by_role("complementary", name="Lessons")
    expect(panel).to_be_visible()
    expect(panel.get_by_role("listitem")).to_have_count(9)
    panel.get_by_role("button", name=title).click()
    expect(panel.locator("#lesson h1")).to_have_text(title)


def answer(page, exercise: int, text: str, button: str = "Check"):
    box = page.get_by_role("textbox", name=f"answer to exercise {exercise}")
    box.fill(text)
    block = page.locator(".lesson-block.checkpoint").nth(exercise - 1)
    block.get_by_role("button", name=button).click()
    feedback = block.locator(".feedback")
    feedback.scroll_into_view_if_needed()
    return feedback


def test_a_checkpoint_answered_wrong_then_right(page):
    open_lesson(page, MAIN_IDEAS)
    lesson = page.locator("#lesson")
    # the command's live output and the figure, inline
    expect(lesson.locator("pre").first).to_contain_text("$ chainrule scan main-ideas")
    expect(lesson.locator("figure img")).to_have_count(1)
    question = lesson.locator(".lesson-block.checkpoint").nth(1)
    expect(question).to_contain_text(f"the step size is {STEP_SIZE_2}. What is the new b3?")
    feedback = answer(page, 2, "2.5")
    expect(feedback).to_have_text(f"Not quite: the new b3 is {NEW_B3}, not 2.5.")
    expect(feedback).to_have_class("feedback no")
    screen(page, "lesson-wrong-1280.png")
    feedback = answer(page, 2, "1.57")
    expect(feedback).to_have_text(f"Right: the new b3 is {NEW_B3}.")
    expect(feedback).to_have_class("feedback ok")
    screen(page, "lesson-right-1280.png")
    # back to the list, and the panel closes with the keyboard
    page.get_by_role("button", name="All lessons").click()
    expect(page.get_by_role("button", name="Inside the black box")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#lessons-panel")).to_be_hidden()


def test_in_a_narrow_window(browser, server_url):
    narrow = browser.new_page(viewport={"width": 420, "height": 800})
    errors: list[str] = []
    narrow.on("pageerror", lambda exc: errors.append(str(exc)))
    narrow.goto(server_url)
    narrow.wait_for_selector("body[data-ready=true]")
    open_lesson(narrow, MAIN_IDEAS)
    width = narrow.evaluate(
        "document.getElementById('lessons-panel').getBoundingClientRect().width"
    )
    assert 400 <= width <= 420  # the panel takes the window, nothing hangs over the edge
    assert narrow.evaluate("document.getElementById('lessons-panel').scrollWidth") <= 420
    feedback = answer(narrow, 1, "-15")
    expect(feedback).to_contain_text("Not quite: dSSR/db3 at b3 = 0 is -15.6551, not -15.")
    feedback = answer(narrow, 1, "", button="Show the answer")
    expect(feedback).to_have_text("The answer is -15.66.")
    feedback = answer(narrow, 1, "-15.66")
    expect(feedback).to_have_text("Right: dSSR/db3 at b3 = 0 is -15.6551.")
    screen(narrow, "lesson-right-420.png")
    # a block's scenario opens in the playground, and the panel makes way for it
    narrow.get_by_role("button", name="Open main-ideas in the playground").click()
    expect(narrow.locator("#lessons-panel")).to_be_hidden()
    narrow.close()
    assert errors == [], f"the page raised: {errors}"
