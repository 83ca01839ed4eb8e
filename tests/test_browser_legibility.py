"""Issue 9 points 2 and 3 in real headless Chromium: the page-error check itself, the wall's scale
with its physical size, labels clear of badges, severity shapes, colour-vision distance, contrast."""

from __future__ import annotations

import pytest

from tests.webtools import chromium

pytestmark = pytest.mark.browser


def test_the_page_error_check_fails_on_a_throwing_page_and_on_a_console_error() -> None:
    with chromium() as browser:
        page = browser.new_page()
        page.set_content("<p>fine</p>")
        page.wait_for_timeout(100)
        browser.errors.assert_clean()  # a quiet page passes
        page.set_content("<script>setTimeout(() => { throw new TypeError('boom in a timer'); }, 0)</script>")
        page.wait_for_timeout(300)
        with pytest.raises(AssertionError, match="boom in a timer"):
            browser.errors.assert_clean()
        page.evaluate("() => console.error('logged as an error')")
        with pytest.raises(AssertionError, match="logged as an error"):
            browser.errors.assert_clean()
        page.evaluate("() => console.warn('a warning is not an error')")
        browser.errors.assert_clean()
        # Pages of a context are watched too (the sign-out test uses one).
        context = browser.new_context()
        other = context.new_page()
        other.set_content("<script>null.equals(1)</script>")
        other.wait_for_timeout(200)
        with pytest.raises(AssertionError, match="equals"):
            browser.errors.assert_clean()
        context.close()
