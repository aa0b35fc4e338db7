"""`python -m bench.otlp_sink --port N`: an OTLP/HTTP endpoint that accepts every trace export and
discards it (the collector the tracing benchmark exports to, in its own process)."""

from __future__ import annotations

import argparse

from aiohttp import web


async def _accept(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=b"", content_type="application/x-protobuf")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    app = web.Application()
    app.router.add_post("/v1/traces", _accept)
    web.run_app(app, host="127.0.0.1", port=parser.parse_args().port, print=None)


if __name__ == "__main__":
    main()
