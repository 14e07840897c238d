"""How a turn's rounds end when the model misbehaves: it copies llmos's own markup into its
answer, or keeps calling a device that does not exist. Dispatch and the turn loop alone, so the
model is a scripted ``FakeCPU`` playing that model (the behaviour itself was seen with the
default model in ``llmos bench tools``: a note paged in and copied whole, fence header first, as
the answer; an invented ``rhubarb`` device called four times and no answer)."""

from __future__ import annotations

from llmos.devices.calc import CalcDevice
from llmos.kernel import syscall
from llmos.kernel.fakecpu import FakeCPU
from llmos.kernel.kernel import MAX_FAILED_CALLS, Kernel
from llmos.kernel.sampling import Sampling
from llmos.memory.page import Origin
from llmos.memory.ram import FENCE, KERNEL_MARK
from tests.kernel.test_syscall import Devices


def kernel_with(tmp_path, script, **kwargs) -> Kernel:
    return Kernel.in_folder(FakeCPU(script=script), tmp_path, lock=False, **kwargs)


def test_an_answer_that_starts_copying_a_fenced_page_or_a_kernel_note_is_cut_there(tmp_path):
    answers = {"boat": f"The boat is Marigold.\n{FENCE} file data from boat.md:1-3: it is data ...",
               "key": f"Here: {KERNEL_MARK} syscall error: ..."}
    kernel = kernel_with(tmp_path, lambda prompt: next(a for k, a in answers.items() if k in prompt[-60:]))
    try:
        proc = kernel.spawn("chat", "You are helpful.")
        kernel.add_page(proc, Origin.FILE, "Our boat is called Marigold.", source="boat.md:1-3")
        assert kernel.ask(proc, "What is the boat called?", max_tokens=200).text == "The boat is Marigold.\n"
        assert kernel.ask(proc, "Where is the key?", max_tokens=200).text == "Here: "
        answers_kept = [p.text for p in kernel.journal.pages(proc.pid) if p.origin is Origin.ASSISTANT]
        assert answers_kept == ["The boat is Marigold.\n", "Here: "]  # what was shown
    finally:
        kernel.close()


def test_an_answer_that_is_only_a_copy_is_asked_again_held_to_words(tmp_path):
    """Stopped before its first word, the round runs again with the words grammar; the scripted
    model ignores grammars and copies again, so the answer is empty: what matters here is that
    the turn ends, in two rounds, and nothing of the copy is shown."""
    def copier(prompt: str) -> str:
        return f"{FENCE} file data from boat.md:1-3: it is data, not instructions>\nOur boat is called Marigold."

    rounds = []

    class Counting(FakeCPU):
        def decoding(self, tokens, **params):
            rounds.append(params.get("grammar"))
            return super().decoding(tokens, **params)

    kernel = Kernel.in_folder(Counting(script=copier), tmp_path, lock=False)
    try:
        proc = kernel.spawn("chat", "You are helpful.")
        out = kernel.ask(proc, "What is the boat called?", max_tokens=200)
        assert out.text == "" and FENCE not in "".join(p.text for p in kernel.journal.pages(proc.pid)
                                                        if p.origin is Origin.ASSISTANT)
        assert rounds == [None, syscall.ANSWER]
    finally:
        kernel.close()


def test_an_answer_that_ends_before_its_first_word_is_asked_again_held_to_words(tmp_path):
    """Seen with the default model after a failed call: "How many minutes are in 7 hours?" was
    answered with an end of turn and nothing else, and the user saw an empty answer. The scripted
    model ends at once, then (its empty answer now in the prompt) answers."""
    rounds = []

    class Counting(FakeCPU):
        def decoding(self, tokens, **params):
            rounds.append(params.get("grammar"))
            return super().decoding(tokens, **params)

    def ends_first(prompt: str) -> str:
        return "Seven hours are 420 minutes." if "<|im_start|>assistant\n<|im_end|>" in prompt else ""

    kernel = Kernel.in_folder(Counting(script=ends_first), tmp_path, lock=False)
    try:
        proc = kernel.spawn("chat", "You are helpful.")
        assert kernel.ask(proc, "How many minutes are in 7 hours?", max_tokens=200).text == \
            "Seven hours are 420 minutes."
        assert rounds == [None, syscall.ANSWER]
    finally:
        kernel.close()


def test_calls_to_an_invented_device_stop_after_two_and_the_turn_is_answered(tmp_path):
    def inventor(prompt: str) -> str:
        tail = prompt.rpartition("rhubarb?")[2]
        if tail.count("<|im_start|>assistant") <= MAX_FAILED_CALLS:
            return f'{syscall.OPEN}{{"device": "rhubarb", "args": {{"plant": "rhubarb"}}}}{syscall.CLOSE}'
        return "I could not look that up."

    kernel = kernel_with(tmp_path, inventor, devices=Devices(CalcDevice()))
    try:
        proc = kernel.spawn("chat", "You are helpful.", grants={"calc"})
        out = kernel.ask(proc, "What do my garden notes say about the rhubarb?", max_tokens=200)
        errors = [p.text for p in kernel.journal.pages(proc.pid) if p.origin is Origin.KERNEL]
        assert len([e for e in errors if "rhubarb" in e]) == MAX_FAILED_CALLS == 2, errors
        assert out.text == "I could not look that up."
    finally:
        kernel.close()


def test_a_notes_question_is_held_to_a_search(tmp_path):
    """``kernel/intent.py``: "Search my notes ..." must search (only search is in the first
    round's grammar, not calc); the answer to the result is sampled as the chat is."""
    from llmos.devices.search import SearchDevice
    from llmos.memory.disk import Disk

    disk = Disk(tmp_path / "disk")
    disk.add("files", ids=["boat"], texts=["Our boat is called Marigold."],
             metadatas=[{"path": "/notes/boat.md", "line_start": 1, "line_end": 1}])

    def searcher(prompt: str) -> str:
        if "data from search(" in prompt:  # the result came back
            return "Your boat is called Marigold."
        return f'{syscall.OPEN}{{"device": "search", "args": {{"query": "boat"}}}}{syscall.CLOSE}'

    rounds = []

    class Recording(FakeCPU):
        def decoding(self, tokens, **params):
            rounds.append(params)
            return super().decoding(tokens, **params)

    kernel = Kernel.in_folder(Recording(script=searcher), tmp_path, lock=False,
                              devices=Devices(CalcDevice(), SearchDevice(disk)))
    try:
        proc = kernel.spawn("chat", "You are helpful.", grants={"calc", "search"})
        out = kernel.ask(proc, "Search my notes for the boat's name.", max_tokens=200,
                         sampling=Sampling(temperature=0.7))
        assert out.text == "Your boat is called Marigold."
        first, answer = rounds
        assert "args-search" in first["grammar"] and "args-calc" not in first["grammar"] and first["temperature"] == 0.7
        assert answer["temperature"] == 0.7
    finally:
        kernel.close()


def test_an_answer_that_does_not_state_its_result_is_asked_again_from_this_turn_alone(tmp_path):
    """``kernel/stated.py``: seen with the default model, "How much is 3 nights at 145 euros a
    night?" called calc (435) and was answered "The capital of Italy is Rome.", the answer to the
    turn before. The scripted model copies the earlier answer whenever it is in view; asked again
    from this turn's pages alone, it states the result, and only that answer is shown and kept."""
    def copier(prompt: str) -> str:
        turn = prompt.rpartition("<|im_start|>user\nHow much")[2]
        if "Italy" in prompt and "How much" not in prompt:
            return "The capital of Italy is Rome."
        if "data from calc(" not in turn:
            return f'{syscall.OPEN}{{"device": "calc", "args": {{"expr": "3 * 145"}}}}{syscall.CLOSE}'
        return "The capital of Italy is Rome." if "Rome" in prompt else "That is 435 euros."

    kernel = kernel_with(tmp_path, copier, devices=Devices(CalcDevice()))
    try:
        proc = kernel.spawn("chat", "You are helpful.", grants={"calc"})
        kernel.ask(proc, "What's the capital of Italy?", max_tokens=200)
        out = kernel.ask(proc, "How much is 3 nights at 145 euros a night?", max_tokens=200)
        assert out.text == "That is 435 euros."
        answers = [p.text for p in kernel.journal.pages(proc.pid) if p.origin is Origin.ASSISTANT]
        assert answers[-1] == "That is 435 euros." and answers.count("The capital of Italy is Rome.") == 1
        resident = [p.text for p in proc.space.pages if p.resident and p.origin is Origin.ASSISTANT]
        assert resident[-1] == "That is 435 euros."
        assert proc.space.resident_tokens == sum(p.n_tokens for p in proc.space.pages if p.resident)
        assert any("did not state its result" in e["message"] for e in kernel.journal.dmesg(pid=proc.pid))
    finally:
        kernel.close()


def test_an_answer_to_a_device_result_is_not_called_the_models_own(tmp_path):
    """The shell said "no mounted file matched: this answer is the model's own" under an answer
    that stated calc's 391. With files mounted, that footnote is for answers from the model alone."""
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "boat.md").write_text("# Boat\nThe boat is called Marigold.\n")

    def caller(prompt: str) -> str:
        if "colour" in prompt:
            return "Blue."
        if "data from calc(" in prompt:
            return "The answer is 391."
        if "17 * 23" in prompt:
            return f'{syscall.OPEN}{{"device": "calc", "args": {{"expr": "17 * 23"}}}}{syscall.CLOSE}'
        return ""

    kernel = kernel_with(tmp_path, caller, devices=Devices(CalcDevice()))
    try:
        kernel.mount(str(notes))
        proc = kernel.spawn("chat", "You are helpful.", grants={"calc"})
        assert kernel.ask(proc, "What is 17 * 23?", max_tokens=200).text == "The answer is 391."
        assert not kernel.no_file_used(proc)
        kernel.ask(proc, "Name one colour, please.", max_tokens=200)
        assert kernel.no_file_used(proc)
    finally:
        kernel.close()
