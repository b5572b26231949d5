"""Which address a console request came from, for counting sign-in attempts per address.

By default the address is the TCP peer (`request.remote_addr`). In production the app sits
behind nginx, so every peer is the proxy: set CONSOLE_TRUSTED_PROXIES to the number of
proxies in front of the app (1 for one nginx that sets `X-Forwarded-For`) and the console,
and only the console, takes the client address from that header through werkzeug's
ProxyFix, trusting exactly that many hops from the right. The webhooks never look at
addresses or forwarded headers (the edge checks Twilio's signature against
PUBLIC_BASE_URL), so they go past it untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.middleware.proxy_fix import ProxyFix

CONSOLE_PATH = "/console"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class ConsoleProxyFix:
    """ProxyFix for the console's paths only: REMOTE_ADDR from `trusted_proxies` hops of X-Forwarded-For."""

    def __init__(self, wsgi_app: WsgiApp, trusted_proxies: int) -> None:
        self._plain = wsgi_app
        self._fixed = ProxyFix(wsgi_app, x_for=trusted_proxies, x_proto=0, x_host=0, x_port=0, x_prefix=0)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == CONSOLE_PATH or path.startswith(CONSOLE_PATH + "/"):
            return self._fixed(environ, start_response)
        return self._plain(environ, start_response)


def install(app: Any, trusted_proxies: int) -> None:
    """Put the console's ProxyFix in front of the app when there are proxies to trust."""
    if trusted_proxies:
        app.wsgi_app = ConsoleProxyFix(app.wsgi_app, trusted_proxies)
