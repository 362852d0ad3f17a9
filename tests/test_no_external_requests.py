"""The page asks nothing of any host but the app itself: no web fonts, no CDN, no analytics.

Headless Chromium loads the app (tiny checkpoints) and opens every tab while recording each request; any request
to a host other than 127.0.0.1 fails the test. The Training tab's style rules, passed with launch(css=...), apply.
"""

from __future__ import annotations

from urllib.parse import urlparse

LOCAL_HOSTS = {"127.0.0.1"}


def external(url: str) -> bool:
    """Whether a request goes over the network to a host other than the app's (data: and blob: URLs do not)."""
    parsed = urlparse(url)
    return parsed.scheme in ("http", "https", "ws", "wss") and parsed.hostname not in LOCAL_HOSTS


def record_external_requests(page) -> list[str]:
    """A list that fills with every external URL the page requests (its documents, scripts, fonts, sockets)."""
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url) if external(request.url) else None)
    page.on("websocket", lambda socket: seen.append(socket.url) if external(socket.url) else None)
    return seen


def test_the_page_requests_nothing_from_other_hosts(browser, app_url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    seen = record_external_requests(page)
    try:
        page.goto(app_url)
        page.wait_for_selector("text=Eager Playground", timeout=60000)
        tabs = page.get_by_role("tab")
        names = [tabs.nth(index).inner_text() for index in range(tabs.count())]
        assert "Training" in names, names
        for name in names:
            page.get_by_role("tab", name=name).click()
            page.wait_for_timeout(1000)  # (never "networkidle": the Training tab's timer keeps polling)
        page.get_by_role("tab", name="Training").click()
        progress = page.locator(".ep-progress").first
        progress.wait_for(timeout=30000)
        assert progress.evaluate("node => getComputedStyle(node).paddingLeft") == "14px", \
            "the Training tab's CSS must reach the page (launch(css=...))"
        family = page.locator(".gradio-container").first.evaluate("node => getComputedStyle(node).fontFamily")
        assert "ui-sans-serif" in family and "Inter" not in family, family
        page.wait_for_timeout(3000)  # a timer tick or a late font would show up here
    finally:
        context.close()
    assert seen == [], f"the page asked other hosts: {sorted(set(seen))[:10]}"
