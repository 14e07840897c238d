"""Per-model settings: the ``[models.NAME]`` tables of config.toml.

One model wants a longer context, another more threads, a third a fixed chat
template or its authors' sampling; a user with a GPU build of llama.cpp wants
layers offloaded. Each model gets a table of its own, looked up by the name it
is run under (``--model NAME``, ``llmos model use NAME``, ``/model NAME``),
or by a GGUF path's file name without ``.gguf``::

    [models.coder-1.5b]
    context = 8192                 # tokens of the context window (--ctx wins when given)
    threads = 8                    # CPU threads (default: the physical cores)
    n_gpu_layers = 99              # layers offloaded to a GPU build of llama.cpp (0: none)
    chat_template = "~/tpl.jinja"  # a Jinja file (or the template itself) instead of the GGUF's
    temperature = 0.6              # the chat default's sampling (instead of the authors'
    top_p = 0.9                    #  recommendation, kernel/sampling.py); --temperature wins
    top_k = 20
    min_p = 0.0
    repeat_penalty = 1.05

``[models] folders = [...]`` (where to look for GGUFs, ``kernel/catalog.py``)
and ``[model] default`` (``llmos model use``) live beside them. A key that is
not one of these, or a value of the wrong type, is a one-line usage error: a
typo must not be ignored in silence.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from llmos.errors import UsageError

SAMPLING_KEYS = ("temperature", "top_k", "top_p", "min_p", "repeat_penalty")
KINDS = {"context": int, "threads": int, "n_gpu_layers": int, "chat_template": str, "temperature": float,
         "top_k": int, "top_p": float, "min_p": float, "repeat_penalty": float}
"""Each setting's type, in the order ``llmos model NAME`` lists them."""


@dataclass(frozen=True)
class ModelSettings:
    name: str = ""
    context: int | None = None
    threads: int | None = None
    n_gpu_layers: int | None = None
    chat_template: str | None = None
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    min_p: float | None = None
    repeat_penalty: float | None = None

    def given(self) -> dict:
        """The settings the user wrote (for ``llmos model NAME``)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name != "name" and getattr(self, f.name) is not None}

    def sampling(self) -> dict:
        """The sampling keys the user set (``kernel/sampling.py`` puts them over the authors')."""
        return {k: getattr(self, k) for k in SAMPLING_KEYS if getattr(self, k) is not None}

    def template(self) -> str | None:
        """The chat template's Jinja source: the file it names, or the value itself."""
        value = self.chat_template
        if value is None or "{" in value:
            return value
        path = Path(value).expanduser()
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise UsageError(f"config.toml [models.{self.name}] chat_template: cannot read {path}: {reason}") from None


WHAT = {int: "a whole number", float: "a number", str: "a str"}


def _check(name: str, key: str, value, kind: type):
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise UsageError(f"config.toml [models.{name}] {key} must be {WHAT[kind]}, not {value!r}")
    if kind is int and key != "n_gpu_layers" and value < 1:
        raise UsageError(f"config.toml [models.{name}] {key} must be at least 1, not {value}")
    return value


def for_model(name: str, config: dict | None = None) -> ModelSettings:
    """The settings of the model run as ``name`` (an empty set where there are none)."""
    if config is None:
        from llmos.paths import load_config

        config = load_config()
    table = config.get("models", {})
    if not isinstance(table, dict):
        raise UsageError("config.toml: [models] must be a table")
    key = name if name in table else Path(name).name.removesuffix(".gguf")
    mine = table.get(key, {}) if key != "folders" else {}
    if not isinstance(mine, dict):
        raise UsageError(f"config.toml: [models.{key}] must be a table of settings")
    values = {}
    for k, v in mine.items():
        if k not in KINDS:
            raise UsageError(f"config.toml [models.{key}]: unknown setting {k!r} (known: {', '.join(KINDS)})")
        values[k] = _check(key, k, v, KINDS[k])
    return ModelSettings(name=key, **values)
