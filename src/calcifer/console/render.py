"""Pages and assets: Jinja2 templates (autoescaped) and the static files, with the console's headers.

Every page is sent with a strict Content-Security-Policy (scripts and styles only from the console's
own files, no inline script: a chart's data travels as a JSON data block), no framing, no referrer,
and `Cache-Control: no-store` (pages show spend and keys).
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from importlib import resources
from typing import Any

import orjson
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import Response

PAGE_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


def usd(value: Decimal | int | None, places: int | None = None) -> str:
    """A USD amount for a page: its exact digits (or rounded to `places`), '—' when unpriced."""
    if value is None:
        return "unpriced"
    value = Decimal(value)  # a whole amount arrives from the JSON as an int
    value = value.quantize(Decimal(1).scaleb(-places)) if places is not None else value.normalize()
    text = format(value, ",f")
    return "$" + text if not text.startswith("-") else "-$" + text[1:]


def when(value: str | None) -> str:
    """An ISO time from the API as 'YYYY-MM-DD HH:MM:SS' UTC."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def as_json(value: object) -> str:
    """A JSON value as compact text for a page (exact decimals; escaped by the template as text)."""
    return orjson.dumps(value, default=_number).decode()


def _dumps(value: object, **_options: object) -> str:
    """Jinja's `tojson` dumps: `as_json` (Jinja then escapes the text for HTML)."""
    return as_json(value)


def _number(value: object) -> orjson.Fragment:
    if isinstance(value, Decimal):
        return orjson.Fragment(format(value, "f"))
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def load_assets() -> dict[str, Asset]:
    """The console's static files, read once from the package."""
    assets: dict[str, Asset] = {}
    for entry in resources.files("calcifer.console").joinpath("static").iterdir():
        if entry.is_file():
            body = entry.read_bytes()
            media = mimetypes.guess_type(entry.name)[0] or "application/octet-stream"
            if media.startswith("text/") or media.endswith("javascript"):
                media += "; charset=utf-8"
            assets[entry.name] = Asset(body, media, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
    return assets


class Renderer:
    def __init__(self) -> None:
        self.env = Environment(
            loader=PackageLoader("calcifer.console", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["usd"] = usd
        self.env.filters["when"] = when
        self.env.filters["as_json"] = as_json
        self.env.policies["json.dumps_function"] = _dumps  # `tojson` writes decimals exactly
        self.assets = load_assets()

    def page(self, template: str, status: int = 200, **context: Any) -> Response:
        body = self.env.get_template(template).render(**context)
        return Response(body, status_code=status, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)

    def asset(self, name: str, if_none_match: str | None) -> Response | None:
        asset = self.assets.get(name)
        if asset is None:
            return None
        headers = {"etag": asset.etag, "cache-control": "no-cache", "x-content-type-options": "nosniff"}
        if if_none_match == asset.etag:
            return Response(status_code=304, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)
