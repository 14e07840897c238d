"""The ``llmos`` command: the shell with no arguments, OS verbs as subcommands.

Parsing is stdlib argparse and every handler imports what it needs inside
itself, so ``llmos --help`` and ``llmos --version`` never load llama_cpp,
chromadb or textual. Every ``LlmosError`` becomes one line on stderr and a
non-zero exit; an unexpected exception is logged with its traceback to the
data dir and reported in one line.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback

from llmos import __version__
from llmos.errors import LlmosError, UsageError
from llmos.term import for_stream, terminal_safe


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", "-m", help="qwen (default), tiny, coder-1.5b, a name from `llmos model list`, "
                   "or a path to a .gguf file (env LLMOS_MODEL; `llmos model use NAME` sets the default)")
    p.add_argument("--ctx", type=int, default=None,
                   help="context window in tokens (default: the model's [models.NAME] context, else 4096)")
    p.add_argument("--cpu-url", action="append", metavar="URL",
                   help="an OpenAI-compatible server to use as the CPU (repeat for several cores; "
                        "env LLMOS_CPU_URL, config [cpu] url)")
    p.add_argument("--disk-url", metavar="URL",
                   help="a Chroma server (http://host:port) as the disk (env LLMOS_DISK_URL, config [disk] url)")
    p.add_argument("--cpu-timeout", type=float, metavar="S",
                   help="seconds to wait for a remote CPU before it counts as down (default 60)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmos",
        description="An operating-system shell for a local language model. "
                    "With no command, opens the shell.",
    )
    parser.add_argument("--version", action="version", version=f"llmos {__version__}")
    _model_args(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="answer one prompt and exit (streams to stdout)")
    run.add_argument("prompt", nargs="+", help="the prompt, or - to read it from stdin")
    _model_args(run)
    run.add_argument("--max-tokens", type=int, default=512)
    run.add_argument("--temperature", type=float, default=None,
                     help="0 = greedy; default: the sampling the model's authors recommend")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--system", default=None, help="system prompt")
    run.add_argument("--stats", action="store_true", help="print timing to stderr at the end")
    run.add_argument("--devices", default="",
                     help="devices the process may call, comma-separated (e.g. calc,clock,python); "
                          "risky ones ask on the terminal")
    run.add_argument("--ram", type=int, default=None,
                     help="RAM budget in tokens (default: the context window minus room for the answer)")
    run.add_argument("--app", default=None, help="run an app as the process (see: llmos apps); default chat")
    run.add_argument("--budget", type=int, default=None, help="the app's budget (think: samples; summarize: tokens)")
    run.add_argument("--opt", action="append", metavar="KEY=VALUE", help="an app option (repeatable)")
    run.add_argument("--json", action="store_true", help="with --app: print the app's result as JSON")
    went_on = run.add_mutually_exclusive_group()
    went_on.add_argument("--pid", type=int, default=None,
                         help="add this turn to process PID's conversation (see: llmos ps -a, llmos log PID)")
    went_on.add_argument("-c", "--continue", dest="cont", action="store_true",
                         help="add this turn to the conversation written to last")

    from llmos import modelctl

    modelctl.add_parser(sub, _model_args)

    demo = sub.add_parser("demo", help="a guided two-minute tour of the OS analogy, in the shell")
    _model_args(demo)
    demo.add_argument("--fast", action="store_true", help="no pauses (for tests and rehearsals)")
    demo.add_argument("--manual", action="store_true", help="wait for a key between steps")
    demo.add_argument("--step-delay", type=float, default=None, help="seconds between steps")
    serve = sub.add_parser("serve", help="the shell in a web browser on 127.0.0.1 (for projectors)")
    _model_args(serve)
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--demo", action="store_true", help="serve the demo instead of the shell")

    from llmos import appctl, bench, devctl
    from llmos.verbs import add_parsers

    bench.add_parsers(sub)
    parser.handlers = {"run": cmd_run, "model": modelctl.cmd_model, "bench": bench.main, "demo": cmd_demo,
                       "serve": cmd_serve, **add_parsers(sub), **devctl.add_parsers(sub),
                       **appctl.add_parsers(sub)}
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _export_remote(args)
        if args.command is None:
            from llmos.tui import run_shell

            return run_shell(args)
        handler = parser.handlers[args.command]
        return handler(args) or 0
    except LlmosError as exc:
        print(f"llmos: error: {terminal_safe(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: one line for the user, the traceback in the log
        log = _crash_log(exc)
        print(f"llmos: internal error: {type(exc).__name__}: {terminal_safe(str(exc))} (traceback in {log})",
              file=sys.stderr)
        return 70
    finally:
        if "llmos.kernel.boot" in sys.modules:  # loaded only by commands that boot a CPU
            sys.modules["llmos.kernel.boot"].settle()


def _export_remote(args: argparse.Namespace) -> None:
    """Remote CPU and disk flags become the environment every part of llmos (the shell's
    boot, benchmarks' child processes) reads them from: see ``kernel/boot.py``."""
    import os

    if getattr(args, "cpu_url", None):
        os.environ["LLMOS_CPU_URL"] = " ".join(args.cpu_url)
    if getattr(args, "disk_url", None):
        os.environ["LLMOS_DISK_URL"] = args.disk_url
    if getattr(args, "cpu_timeout", None) is not None:
        if not args.cpu_timeout > 0:
            raise UsageError(f"--cpu-timeout must be a positive number of seconds, not {args.cpu_timeout:g}")
        os.environ["LLMOS_CPU_TIMEOUT"] = str(args.cpu_timeout)


def _crash_log(exc: BaseException) -> str:
    try:
        from llmos.paths import data_dir

        path = data_dir() / "logs" / "crash.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write("".join(traceback.format_exception(exc)) + "\n")
        return str(path)
    except OSError:
        return "(no log: the data dir is not writable)"


def read_prompt(parts: list[str]) -> str:
    if parts == ["-"]:
        try:
            data = sys.stdin.buffer.read()
        except OSError as exc:
            raise UsageError(f"cannot read stdin: {exc}") from None
        text = data.decode("utf-8", errors="replace")
        if "\x00" in text:
            raise UsageError("stdin holds binary data (NUL bytes), not a text prompt")
    else:
        text = " ".join(parts)
    if not text.strip():
        raise UsageError("empty prompt: give some text, or - to read it from stdin")
    return text


def cmd_run(args: argparse.Namespace) -> int:
    """One process, one turn, through the kernel: the prompt is paged like any input,
    so a paste larger than RAM is swapped, not refused."""
    import asyncio

    from llmos.apps.chat import CHAT_SYSTEM, NO_FILE
    from llmos.approve import terminal_approver
    from llmos.kernel.boot import load_cores
    from llmos.kernel.cpu import Generation
    from llmos.kernel.kernel import Kernel
    from llmos.kernel.sampling import choose

    prompt = read_prompt(args.prompt)
    going_on = args.pid is not None or args.cont
    if args.app or args.budget is not None or args.opt or args.json:
        if going_on:
            raise UsageError("--pid and -c continue a conversation; an app runs as a new process (drop --app)")
        from llmos.appctl import run_app_command

        return run_app_command(args, prompt)  # --app chat is this same turn, run as the chat app
    if going_on and args.system is not None:
        raise UsageError("--system starts a new conversation; it cannot change one that exists (drop --pid/-c)")
    if going_on:  # a pid that cannot be continued is refused before the model loads (seconds)
        from llmos.memory.journal import Journal, journal_path

        with Journal(journal_path()) as journal:
            args.pid = _which_conversation(journal, args)
    cores = load_cores(args.model, n_ctx=args.ctx)
    cpu = cores[0]
    # No instance lock: a one-shot process may run beside an open shell; SQLite's own
    # transactions keep the shared journal consistent, and each process has one owner.
    grants = {d.strip() for d in args.devices.split(",") if d.strip()}
    devices = None
    if grants or going_on:  # a conversation that goes on keeps the devices it was granted
        from llmos.devices.registry import Registry

        devices = Registry.from_config()
        for name in grants:
            devices.get(name)  # an unknown device is a usage error now, not an error page later
    kernel = Kernel(cores, ram=args.ram, lock=False, devices=devices, approver=terminal_approver)
    result = Generation()
    out = sys.stdout
    calls: list[dict] = []
    ran: list[int] = []
    """The pid of the process this turn ran in (for --stats)."""
    unused: list[bool] = []
    """Whether files are mounted and none was read for the answer (said on stderr)."""
    kernel.listeners.append(lambda kind, data: calls.append(data) if kind == "device" else None)
    sampling = choose(cpu, args.temperature)

    async def main() -> None:
        proc, ends = _conversation(kernel, args.pid, grants) if going_on else \
            (kernel.spawn("run", args.system or CHAT_SYSTEM, grants=grants), True)
        ran.append(proc.pid)
        try:
            async for step in kernel.turn(proc, prompt, max_tokens=args.max_tokens,
                                          sampling=sampling, seed=args.seed, result=result):
                if step.call:
                    continue  # a device call is not the answer's words: dmesg and --stats show it
                out.write(for_stream(step.text, out))  # exact when piped, safe on a terminal
                out.flush()
            unused.append(kernel.no_file_used(proc))
        finally:
            if ends:
                kernel.end(proc)

    try:
        asyncio.run(main())
    finally:
        kernel.close()
    out.write("\n")
    out.flush()
    if any(unused):
        print(f"llmos: {NO_FILE}", file=sys.stderr)
    if args.stats:
        print(json.dumps({"pid": ran[0] if ran else None, "model": cpu.name, "prompt_tokens": result.prompt_tokens,
                          "tokens": len(result.tokens), "load_s": round(cpu.load_s, 3),
                          "first_token_s": round(result.first_token_s, 3),
                          "tok_per_s": round(result.tok_per_s, 1), "stop": result.stop_reason,
                          "calls": [{"device": c["device"], "args": c["args"], "error": c["error"],
                                     "seconds": round(c["seconds"], 3)} for c in calls]}),
              file=sys.stderr)
    return 0


CONVERSATIONS = ("run", "chat")
"""The apps whose processes are conversations, which ``llmos run --pid``/``-c`` may continue."""


def _which_conversation(journal, args: argparse.Namespace) -> int:
    """The pid ``--pid``/``-c`` names, if it is a conversation this program may continue."""
    pid = args.pid if args.pid is not None else journal.last_conversation(CONVERSATIONS)
    if pid is None:
        raise UsageError('no conversation to continue yet; start one with: llmos run "..."')
    from llmos.memory.journal import no_such_process

    rec = journal.process(pid)
    if rec is None:
        raise no_such_process(pid)
    if rec.app not in CONVERSATIONS:
        raise UsageError(f"process {pid} runs the app {rec.app!r}, not a conversation; "
                         f"only {' and '.join(CONVERSATIONS)} processes can be continued")
    if rec.held_elsewhere:
        raise rec.held_error()
    return pid


def _conversation(kernel, pid: int, grants: set[str]):
    """Process ``pid`` (``_which_conversation`` chose it), taken into this kernel for one more
    turn, and whether to end it after (it had ended: it goes back to the table as it was found)."""
    proc = kernel.adopt(pid)  # claims it: another llmos may have taken it since the check
    try:
        if grants - proc.grants:
            kernel.grant(proc, grants)
    except BaseException:
        if proc.ends_after:
            kernel.end(proc)  # it goes back as it was found
        raise
    return proc, proc.ends_after


def cmd_demo(args: argparse.Namespace) -> int:
    from llmos.tui.demo import run_demo

    if args.step_delay is None:
        del args.step_delay
    return run_demo(args)


def cmd_serve(args: argparse.Namespace) -> int:
    from llmos.tui.serve import run_serve

    return run_serve(args)
