"""``llmos bench ui``: how long a keypress takes to reach the screen while the CPU generates.

The shell runs headless (Textual's pilot driver) on the real model and a
fresh kernel. Keys are typed into the input line one at a time, each posted
as the ``Key`` event the terminal driver would post, and timed until the
compositor hands the terminal driver a frame whose input line shows it.
Twice, in the same run:

- **baseline**: the CPU idle;
- **generating**: while the model streams a long answer (the tokens, the
  Markdown stream and the CPU trace all compete with the keys for the UI
  thread, and the model for the cores).

Only keys typed while the answer was still streaming count for the second
figure. Target: p95 under 50 ms while generating.

What it leaves out: the terminal emulator's own time to draw the frame, and
the terminal's input latency (neither is llmos's).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import string
import tempfile
import time
from pathlib import Path

TARGET_P95_MS = 50.0
LONG = "Write a long story about a dragon who learns to bake bread, with many details."


def _p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


async def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.002)


async def _measure(kernel, keys: int, gap: float) -> dict:
    from textual import events

    from llmos.tui.app import LlmosApp
    from llmos.tui.cpu import CpuPanel

    app = LlmosApp(kernel=kernel, max_tokens=4096)
    async with app.run_test(size=(120, 36)) as pilot:
        shell = app.shell
        frames: list[tuple[float, str]] = []
        display = app._display

        def spy(screen, renderable) -> None:
            # Every frame the compositor hands to the (headless) terminal driver, with the
            # text its input line shows.
            if renderable is not None:
                frames.append((time.perf_counter(), shell.prompt.text))
            display(screen, renderable)

        app._display = spy
        cpu_panel = app.screen.query_one(CpuPanel)
        draw_step, steps = cpu_panel.step, [0]

        def counted(step, pid=None) -> None:
            steps[0] += 1  # tokens that reached the UI
            draw_step(step, pid)

        cpu_panel.step = counted
        await pilot.pause()

        async def type_keys(n: int, while_generating: bool) -> list[float]:
            latencies: list[float] = []
            for i in range(n):
                if while_generating and not shell.generating:
                    break
                typed = shell.prompt.text + string.ascii_lowercase[i % 26]
                start = len(frames)
                sent = time.perf_counter()
                app.post_message(events.Key(typed[-1], typed[-1]))
                await _wait(lambda: any(text == typed for _, text in frames[start:]), 5, "a frame showing the key")
                shown = next(t for t, text in frames[start:] if text == typed)
                if not while_generating or shell.generating:
                    latencies.append(shown - sent)
                await asyncio.sleep(gap)
            return latencies

        idle = await type_keys(keys, while_generating=False)
        shell.prompt.load_text(LONG)
        await pilot.press("enter")
        await _wait(lambda: steps[0] > 8, 120, "tokens to flow")
        tokens, began = steps[0], time.perf_counter()
        busy = await type_keys(keys, while_generating=True)
        while shell.generating and time.perf_counter() - began < 2.0:
            await asyncio.sleep(0.05)  # a window long enough for a steady rate
        tok_per_s = (steps[0] - tokens) / (time.perf_counter() - began)
        shell.interrupt()
        await _wait(lambda: not shell.generating, 30, "the interrupt")
    ms = [x * 1000 for x in busy]
    idle_ms = [x * 1000 for x in idle]
    return {
        "keypress_p50_ms": round(statistics.median(ms), 1) if ms else None,
        "keypress_p95_ms": round(_p95(ms), 1) if ms else None,
        "keypress_max_ms": round(max(ms), 1) if ms else None,
        "n": len(ms),
        "idle_keypress_p50_ms": round(statistics.median(idle_ms), 1),
        "idle_keypress_p95_ms": round(_p95(idle_ms), 1),
        "idle_n": len(idle_ms),
        "tok_per_s": round(tok_per_s, 1),
        "target_p95_ms": TARGET_P95_MS,
        "ok": bool(ms) and _p95(ms) < TARGET_P95_MS,
    }


def run(model: str | None, keys: int = 40, gap: float = 0.03) -> dict:
    from llmos.kernel.boot import load_cpu
    from llmos.kernel.kernel import Kernel

    cpu = load_cpu(model, n_ctx=4096, quiet=True)
    folder = Path(tempfile.mkdtemp(prefix="llmos-bench-ui-"))
    # A journal of its own: the benchmark never touches the user's conversations.
    kernel = Kernel.in_folder(cpu, folder)
    try:
        result = asyncio.run(_measure(kernel, keys, gap))
    finally:
        kernel.close()
        shutil.rmtree(folder, ignore_errors=True)
    return {"model": cpu.name, "threads": cpu.n_threads, **result}


def main(args) -> int:
    result = run(args.model, args.keys)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"keypress to screen while generating ({result['tok_per_s']} tok/s, {result['model']}): "
              f"p50 {result['keypress_p50_ms']} ms, p95 {result['keypress_p95_ms']} ms over {result['n']} keys "
              f"(target p95 < {TARGET_P95_MS:.0f} ms); idle: p50 {result['idle_keypress_p50_ms']} ms, "
              f"p95 {result['idle_keypress_p95_ms']} ms")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("ui", help="keypress-to-screen latency of the shell while the CPU generates")
    p.add_argument("--keys", type=int, default=40, help="keys typed in each phase (default 40)")
    p.add_argument("--model")
    p.add_argument("--json", action="store_true")
    p.set_defaults(bench=main)
