"""Models from the command line: ``llmos model [list | pull REPO | use NAME | info | NAME]``.

- ``llmos model list`` (``--json``): the shipped models, the ones ``pull``
  fetched, and GGUFs found on this machine (the Hugging Face cache, LM Studio,
  Ollama, ``[models] folders``: ``kernel/catalog.py``), each with its size,
  quantisation, trained context and whether its template knows tools, read
  from the file's header (``kernel/ggufinfo.py``) without loading it.
- ``llmos model pull REPO [--file F | --quant Q]``: one GGUF from the Hugging
  Face Hub, verified (``kernel/hub.py``).
- ``llmos model use NAME``: the default from now on (``[model] default`` in
  config.toml); ``--model NAME`` and ``LLMOS_MODEL`` still win.
- ``llmos model [info] [NAME]``: the two files of a model (weights and the
  runtime), loaded, with its settings from ``[models.NAME]`` (``kernel/settings.py``).
"""

from __future__ import annotations

import argparse
import json

from llmos.errors import ModelError, UsageError
from llmos.term import terminal_safe

ACTIONS = ("list", "pull", "use", "info")


def add_parser(sub, model_args) -> None:
    """``model_args(parser)`` adds the shared --model/--ctx/--cpu-url options (``llmos/cli.py``)."""
    model = sub.add_parser(
        "model", help="list, pull, choose and inspect models",
        description="llmos model [list | pull REPO | use NAME | info | NAME]: see `llmos model list`.")
    model.add_argument("words", nargs="*", metavar="ACTION|NAME",
                       help="list; pull REPO; use NAME; info (the default model); or a model's NAME")
    model.add_argument("--file", help="pull: this file of the repo")
    model.add_argument("--quant", help="pull: the file of this quantisation (e.g. Q4_K_M)")
    model_args(model)
    model.add_argument("--json", action="store_true")


def cmd_model(args: argparse.Namespace) -> int:
    words = list(args.words)
    action = words.pop(0) if words and words[0] in ACTIONS else "info"
    if action == "list":
        return _list(args)
    if action == "pull":
        if len(words) != 1:
            raise UsageError("usage: llmos model pull REPO [--file F | --quant Q4_K_M]")
        return _pull(words[0], args)
    if action == "use":
        if len(words) != 1:
            raise UsageError("usage: llmos model use NAME (see: llmos model list)")
        return _use(words[0])
    if len(words) > 1:
        raise UsageError(f"llmos model: unexpected {' '.join(words[1:])!r}")
    return _info(words[0] if words else args.model, args)


# -- list ------------------------------------------------------------------------------------


def rows() -> list[dict]:
    """Every model ``--model`` can name: shipped ones first, then pulled and found ones."""
    from pathlib import Path

    from llmos.kernel import catalog, ggufinfo, models

    default = models.effective_name(None)
    out = []
    for row in models.installed():
        info = {}
        spec = models.KNOWN[row["name"]]
        try:  # the header sits in the first part, so an unjoined model is described too
            head = Path(row["path"]) if row["path"] else models.part_files(spec)[0] if spec.sha256 else None
            info = ggufinfo.summary(head) if head else {}
        except ModelError:
            pass
        title, _, quant = row["title"].rpartition(" ")
        out.append({"name": row["name"], "source": "shipped", "model": title, "size_bytes": row["size_bytes"],
                    "quantization": info.get("quantization", quant),
                    "context_trained": info.get("context_trained"), "tools": info.get("tools"),
                    "where": "shipped" if row["status"] == "ready" else f"shipped, {row['status']}",
                    "path": row["path"], "installed": row["installed"],
                    "status": row["status"], "default": row["name"] == default})
    for found in catalog.find():
        try:
            info, status = ggufinfo.summary(found.path), "ready"
        except ModelError as exc:
            info, status = {}, str(exc)
        out.append({"name": found.name, "source": found.source, "model": info.get("model", ""),
                    "size_bytes": found.size, "quantization": info.get("quantization", ""),
                    "context_trained": info.get("context_trained"), "tools": info.get("tools"),
                    "where": found.where, "path": str(found.path), "installed": status == "ready",
                    "status": status, "default": found.name == default})
    return out


def _list(args: argparse.Namespace) -> int:
    found = rows()
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title="models (* the default; run one with --model NAME, choose with llmos model use NAME)")
    # Names are what --model takes: never cut. The model's title and where it lives fold instead.
    longest = max((len(r["name"]) + 2 for r in found), default=4)
    table.add_column("name", no_wrap=True, min_width=longest)
    table.add_column("model", overflow="fold", ratio=1)
    for col in ("size", "quant", "context", "tools"):
        table.add_column(col, no_wrap=True)
    table.add_column("where", overflow="fold", ratio=1)

    def cell(value) -> Text:  # names and paths come from other programs' files: shown, never obeyed
        return Text(terminal_safe(str(value), newlines=False))

    for r in found:
        tools = "" if r["tools"] is None else "yes" if r["tools"] else "no"
        ctx = f"{r['context_trained']:,}" if r["context_trained"] else ""
        where = r["where"] if r["installed"] else r["status"]  # --json has the path
        table.add_row(cell(("* " if r["default"] else "") + r["name"]), cell(r["model"]),
                      f"{r['size_bytes'] / 1e6:,.0f} MB", cell(r["quantization"]), ctx, tools, cell(where))
    Console().print(table)
    return 0


# -- pull, use -------------------------------------------------------------------------------


def _pull(repo: str, args: argparse.Namespace) -> int:
    import sys

    from llmos.kernel import catalog, hub

    if args.file and args.quant:
        raise UsageError("llmos model pull: give --file or --quant, not both")
    path = hub.pull(repo, file=args.file, quant=args.quant, progress=sys.stderr.isatty())
    name = next((f.name for f in catalog.find() if f.path == path), path.stem.lower())
    print(f"pulled {terminal_safe(str(path), newlines=False)} (sha256 verified); run it with --model {name}")
    return 0


def _use(name: str) -> int:
    from pathlib import Path

    from llmos.kernel import catalog, models
    from llmos.paths import set_config

    canonical = models.ALIASES.get(name, name)
    if canonical not in models.KNOWN and catalog.lookup(canonical) is None:
        path = Path(canonical).expanduser()
        if not path.exists():
            raise ModelError(f"no such model: {name} (see: llmos model list)")
        models.check_gguf(path)
        canonical = str(path.resolve())
    written = set_config("model", "default", canonical)
    print(f"default model: {terminal_safe(canonical, newlines=False)} (written to {written})")
    return 0


# -- info ------------------------------------------------------------------------------------


def _info(name: str | None, args: argparse.Namespace) -> int:
    from llmos.kernel import models
    from llmos.kernel.boot import load_cores
    from llmos.kernel.settings import for_model

    cores = load_cores(name, n_ctx=args.ctx, disk=False)
    if len(cores) > 1 or not isinstance(cores[0].info()["weights"].get("path"), str):
        infos = [c.info() for c in cores]
        print(json.dumps(infos if len(infos) > 1 else infos[0], indent=2))  # remote: the server's
        return 0
    info = cores[0].info()
    settings = for_model(models.effective_name(name)).given()
    if args.json:
        print(json.dumps({**info, "settings": settings}, indent=2))
        return 0
    # Names and paths come from the GGUF file's metadata: shown, never obeyed by the terminal.
    w = {k: terminal_safe(v, newlines=False) if isinstance(v, str) else v for k, v in info["weights"].items()}
    r = info["runtime"]
    print("An LLM is two files: the weights (what it learned) and the program that runs them.\n")
    print(f"weights file  {w['path']}")
    print(f"  size        {w['size_bytes'] / 1e6:,.1f} MB")
    print(f"  model       {w['name']} ({w['architecture']})")
    print(f"  parameters  {w['parameters']:,}")
    print(f"  quantized   {w['quantization']}")
    print(f"  context     {w['context_length_trained']:,} tokens trained, {r['context_window']:,} in use")
    print(f"  template    {'chat template present' if w['chat_template'] else 'no chat template'}"
          f" (using: {terminal_safe(r['chat_format'], newlines=False)}; tool calls: {r['tool_calls']})")
    print(f"run file      {r['engine']} {r['llama_cpp_python']}")
    print(f"  build       {' '.join(r['build_flags'])}")
    print(f"  threads     {r['threads']}")
    print(f"  extra bufs  {'on' if r['extra_buffer_types'] else 'off (AMX build: see kernel/llama.py)'}")
    shown = ", ".join(f"{k} = {terminal_safe(str(v), newlines=False)}" for k, v in settings.items())
    print(f"settings      {shown or 'none (add [models.NAME] to config.toml: see kernel/settings.py)'}")
    return 0
