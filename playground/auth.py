"""`--auth USER:PASSWORD`: a login that says nothing before it succeeds and slows down guessing.

Gradio's login page (6.31) embeds the whole API description (every endpoint, its parameters and their
examples, e.g. run ids) in the page it shows *before* the login. `hide_api_before_login` blanks that part of the
page for a visitor who is not logged in; everything behind the login (`/config`, `/info`, the API) already
requires the session cookie.

Wrong passwords are throttled: attempts are taken one at a time, and after each failure the next attempt waits
`FIRST_DELAY` seconds, doubling with every further failure up to `MAX_DELAY`; a success resets it. 50 guesses
therefore take about 6 minutes instead of a third of a second. The wait is global, not per address (Gradio's
login hook is not given the request): someone guessing also slows down the real user's next login, by at most
`MAX_DELAY` seconds.
"""

from __future__ import annotations

import asyncio
import secrets

FIRST_DELAY = 0.5  # seconds after the first wrong password
MAX_DELAY = 8.0
EMPTY_API_INFO = {"named_endpoints": {}, "unnamed_endpoints": {}}


class ThrottledLogin:
    """One user and password, compared in constant time, with back-off. Give `launch(auth=login.check)`: Gradio
    awaits `auth` only if it is a coroutine *function* (an object with an async `__call__` would return a
    coroutine, which Gradio would take as a truthy "yes" for any password)."""

    def __init__(self, user: str, password: str):
        self.user, self.password = user, password
        self.failures = 0
        self.lock = asyncio.Lock()

    def delay(self) -> float:
        return 0.0 if not self.failures else min(FIRST_DELAY * 2 ** (self.failures - 1), MAX_DELAY)

    async def check(self, user: str, password: str) -> bool:
        async with self.lock:  # one attempt at a time, so parallel guesses queue behind the wait
            await asyncio.sleep(self.delay())
            good = secrets.compare_digest(user.encode(), self.user.encode()) & \
                secrets.compare_digest(password.encode(), self.password.encode())
            self.failures = 0 if good else self.failures + 1
            return bool(good)


def hide_api_before_login() -> None:
    """Makes Gradio's pre-login page carry no API description (see the module docstring). Idempotent."""
    from gradio import routes

    original = routes.templates.TemplateResponse
    if getattr(original, "hides_api", False):
        return

    def template_response(*args, **kwargs):
        context = kwargs.get("context")
        if isinstance(context, dict) and (context.get("config") or {}).get("auth_required"):
            context["gradio_api_info"] = EMPTY_API_INFO
        return original(*args, **kwargs)

    template_response.hides_api = True
    routes.templates.TemplateResponse = template_response
