"""CPU of signing one Bedrock request with botocore's SigV4 signer, beside the gateway's own CPU per
request (`bench.inprocess`): is botocore cheap enough for the hot path?

    .venv/bin/python -m bench.signing 20000

Prints microseconds of CPU per signature (process time, so a loaded machine inflates it less than
wall time would), for a typical Converse body, with static credentials (no refresh: the credentials in
hand are reused until near expiry, and refreshing runs in a worker thread).
"""

from __future__ import annotations

import asyncio
import sys
import time

import orjson
from botocore.credentials import Credentials

from calcifer.providers.aws_signing import AwsSigner

URL = "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
BODY = orjson.dumps({"messages": [{"role": "user", "content": [{"text": "Hello! " * 40}]}]})


async def measure(count: int) -> float:
    signer = AwsSigner(Credentials("AKIDEXAMPLE", "secret", "token"), "us-east-1")
    await signer.headers(URL, BODY)  # warm: credentials frozen once
    started = time.process_time()
    for _ in range(count):
        await signer.headers(URL, BODY)
    return (time.process_time() - started) / count * 1e6


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    print(f"botocore SigV4: {asyncio.run(measure(count)):.1f} us CPU per signed request ({count} requests)")


if __name__ == "__main__":
    main()
