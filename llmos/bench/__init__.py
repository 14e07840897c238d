"""``llmos bench ...``: performance targets as commands with JSON output, not timed tests.

Each benchmark measures against a baseline run in the same command (raw
llama-cpp-python, re-prefill, one process, plain BM25, the raw model in its
own template) and reports both: ``cpu``, ``switch``, ``sched``, ``paging``
(``longmem.py``'s long conversations, or LoCoMo's read by ``locomo.py``; ``baselines.py``), ``answers`` (what the
default model answers from those conversations, against the raw model with a FIFO context), ``files`` (``data/files.jsonl``), ``think``, ``tools`` (device calls on
``data/tools.jsonl``), ``ui``, ``soak``. ``docs/bench/README.md`` has the
last figures and the commands that produced them.
"""

from __future__ import annotations


def add_parsers(sub) -> None:
    from llmos.bench import answers, cpu, files, paging, sched, soak, switch, think, tools, ui

    bench = sub.add_parser("bench", help="benchmarks (JSON with --json)")
    kinds = bench.add_subparsers(dest="bench_kind", metavar="KIND", required=True)
    for module in (cpu, files, paging, answers, sched, soak, switch, think, tools, ui):
        module.add_parser(kinds)


def main(args) -> int:
    return args.bench(args)
