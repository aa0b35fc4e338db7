"""The console's routes, all under `/ui`."""

from __future__ import annotations

from calcifer.console.overview import overview
from calcifer.console.web import asset, login, login_form, logout, logout_everywhere, page
from calcifer.http.asgi import Route


def console_routes() -> list[Route]:
    return [
        Route("/ui", page(overview)),
        Route("/ui/login", login_form),
        Route("/ui/login", login, methods=["POST"]),
        Route("/ui/logout", logout, methods=["POST"]),
        Route("/ui/logout/everywhere", logout_everywhere, methods=["POST"]),
        Route("/ui/static/{name}", asset),
    ]
