"""The chat page in headless Chromium (Debian's chromium, driven by Playwright): type, watch it stream."""

from __future__ import annotations

import shutil

import pytest

from tests.api.harness import live_api

pytestmark = pytest.mark.integration


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium is not installed: apt-get install chromium (.ci/run does it)")
    return path


def test_a_question_streams_into_the_page_with_sources_and_routing():
    from playwright.sync_api import sync_playwright

    with live_api() as api, sync_playwright() as playwright:
        api.provider("local").delay_s = 0.2
        browser = playwright.chromium.launch(executable_path=chromium(), headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.goto(api.url + "/")
            page.fill("#key", api.keys["free-user"])
            page.fill("#question", "O que é ACOS?")
            page.click("#send")
            page.wait_for_function("document.querySelector('#routing').textContent.length > 0", timeout=20_000)
            assert page.text_content("#answer") == "[local] Resposta: O que é ACOS?"
            assert "local / melancia-tuned" in page.text_content("#routing")
            assert page.text_content("#sources li") == "ACOS › O que é (data/corpus/acos.md)"
            assert page.text_content("#error") == ""

            page.fill("#key", "mk_wrong")
            page.click("#send")
            page.wait_for_function("document.querySelector('#error').textContent.length > 0", timeout=10_000)
            assert "invalid or revoked API key" in page.text_content("#error")
        finally:
            browser.close()
