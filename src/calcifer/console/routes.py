"""The console's routes, all under `/ui`."""

from __future__ import annotations

from starlette.responses import Response

from calcifer.console.keys import create_key, key_page, keys_page, revoke_key, update_key
from calcifer.console.level_forms import delete_level, put_member, remove_member, save_level
from calcifer.console.levels import audit_page, level_list, level_page
from calcifer.console.models import models_page
from calcifer.console.overview import overview
from calcifer.console.requests import request_page, requests_page
from calcifer.console.spend import spend_csv, spend_page
from calcifer.console.web import Visit, asset, login, login_form, logout, logout_everywhere, page
from calcifer.http.asgi import Route


async def _keys(visit: Visit) -> Response:
    return await keys_page(visit)


async def _key(visit: Visit) -> Response:
    return await key_page(visit)


def _level_form_routes() -> list[Route]:
    routes: list[Route] = []
    for plural in ("teams", "users", "customers"):
        one = f"/ui/{plural}/{{item_id}}"
        routes += [
            Route(f"/ui/{plural}", page(save_level), methods=["POST"]),
            Route(one, page(save_level), methods=["POST"]),
            Route(one + "/delete", page(delete_level), methods=["POST"]),
        ]
    return [
        *routes,
        Route("/ui/teams/{item_id}/members", page(put_member), methods=["POST"]),
        Route("/ui/users/{item_id}/teams", page(put_member), methods=["POST"]),
        Route("/ui/teams/{item_id}/members/{user_id}/remove", page(remove_member), methods=["POST"]),
    ]


def console_routes() -> list[Route]:
    return [
        Route("/ui", page(overview)),
        Route("/ui/spend", page(spend_page)),
        Route("/ui/spend.csv", page(spend_csv)),
        Route("/ui/requests", page(requests_page)),
        Route("/ui/requests/{request_id}", page(request_page)),
        Route("/ui/keys", page(_keys)),
        Route("/ui/keys", page(create_key), methods=["POST"]),
        Route("/ui/keys/{key_id}", page(_key)),
        Route("/ui/keys/{key_id}", page(update_key), methods=["POST"]),
        Route("/ui/keys/{key_id}/revoke", page(revoke_key), methods=["POST"]),
        Route("/ui/models", page(models_page)),
        *(Route(f"/ui/{plural}", page(level_list)) for plural in ("teams", "users", "customers")),
        *(Route(f"/ui/{plural}/{{item_id}}", page(level_page)) for plural in ("teams", "users", "customers")),
        *_level_form_routes(),
        Route("/ui/audit", page(audit_page)),
        Route("/ui/login", login_form),
        Route("/ui/login", login, methods=["POST"]),
        Route("/ui/logout", logout, methods=["POST"]),
        Route("/ui/logout/everywhere", logout_everywhere, methods=["POST"]),
        Route("/ui/static/{name}", asset),
    ]
