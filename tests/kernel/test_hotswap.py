"""Switching the CPU while processes live (``kernel/hotswap.py``): the real tiny and default
models, a real journal and disk in a temp dir."""

from __future__ import annotations

import pytest

from llmos.devices.calc import CalcDevice
from llmos.errors import UsageError
from llmos.kernel.kernel import Kernel
from llmos.kernel.llama import LlamaCPU
from llmos.kernel.models import resolve
from llmos.kernel.proc import ProcState
from llmos.memory.page import Origin, Trust
from llmos.memory.ram import render
from tests.conftest import assert_swap_agrees
from tests.kernel.test_syscall import Devices
from tests.reliability.test_crash_points import _qwen_path

FILLER = ("Note {i}: the harbour office opens at {h} o'clock and the ferry to the island leaves "
          "from pier {i}, weather permitting; tickets are sold on board. ")


@pytest.mark.default_model
def test_a_switch_keeps_every_page_counts_them_again_and_reteaches_devices(tmp_path, shared_home):
    tiny = LlamaCPU(resolve("tiny"), n_ctx=2048, name="tiny")  # its own: the switch closes it
    kernel = Kernel.in_folder(tiny, tmp_path, lock=False, devices=Devices(CalcDevice()))
    try:
        proc = kernel.spawn("chat", "You are a helpful assistant.", grants={"calc"})
        system = proc.space.pages[0]
        assert "<syscall>" in system.text  # SmolLM2's template has no tools: llmos's block
        kernel.add_page(proc, Origin.USER, "My dog is called Biscuit.")
        kernel.add_page(proc, Origin.ASSISTANT, "Biscuit is a lovely name for a dog.")
        for i in range(12):
            kernel.add_page(proc, Origin.USER, FILLER.format(i=i, h=i % 12 + 1) * 2)
        kernel.ask(proc, "Say hello.", max_tokens=4)
        assert proc.model == "tiny"
        ids = {p.id for p in kernel.journal.pages(proc.pid)}
        tiny_store = kernel.cores[0].snapshots

        qwen = LlamaCPU(_qwen_path(shared_home), n_ctx=1024, name="qwen")  # a smaller RAM: pressure
        kernel.switch_cpu(qwen)
        assert kernel.cpu is qwen and kernel.ram == 1024 - 256
        assert kernel.saved_states  # the tiny model's saved states are kept, by model
        # Every page is still the process's; those that no longer fit went to swap, none lost.
        assert {p.id for p in kernel.journal.pages(proc.pid)} == ids | {p.id for p in proc.space.pages}
        assert proc.space.resident_tokens <= proc.space.budget == kernel.ram
        assert proc.space.swapped()
        assert_swap_agrees(kernel.backing.swap.disk, kernel.journal, proc.pid)
        # Counted with the new tokenizer and template, exactly.
        for page in proc.space.resident():
            assert page.tokens == kernel._encode(page.origin.role, render(page), page.trust is not Trust.UNTRUSTED)
        assert proc.space.resident_tokens == sum(p.n_tokens for p in proc.space.resident())
        # Taught its devices again, in Qwen's own tools format.
        assert "<syscall>" not in system.text and "<tools>" in system.text and system.resident

        answer = kernel.ask(proc, "What is my dog called?", max_tokens=24)
        assert proc.model == "qwen"
        assert "biscuit" in answer.text.lower()  # a swapped page came back by a fault, on the new CPU

        busy = kernel.spawn("chat", "x")
        busy.state = ProcState.RUNNING
        with pytest.raises(UsageError, match=f"process {busy.pid} is answering"):
            kernel.switch_cpu(LlamaCPU(resolve("tiny"), n_ctx=2048, name="tiny"))
        busy.state = ProcState.SLEEPING

        back = LlamaCPU(resolve("tiny"), n_ctx=2048, name="tiny")
        kernel.switch_cpu(back)
        assert kernel.cores[0].snapshots is tiny_store  # its KV states again, none of Qwen's
        assert "<syscall>" in system.text
        assert kernel.ask(proc, "Say hello.", max_tokens=4).tokens and proc.model == "tiny"
    finally:
        kernel.close()
