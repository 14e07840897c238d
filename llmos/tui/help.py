"""The help screen (F1): keys, slash commands, and what the panels show."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from llmos.tui.commands import VERBS

KEYS = """\
# llmos shell

## Keys

| key | does |
|---|---|
| Enter | send the input |
| Ctrl+J | new line in the input (Shift+Enter / Alt+Enter too, where the terminal reports them) |
| Up / Down | previous / next input, from the first / last line of the input |
| Ctrl+C or Esc | interrupt the answer being generated (within one token) |
| Ctrl+C twice | quit, when nothing is being generated |
| Ctrl+P | command palette: the OS verbs, kill a process, show a page map |
| Ctrl+T | switch light / dark theme |
| Ctrl+L | clear the conversation pane (the process keeps its memory) |
| Tab | move between the input and the panels (Enter on a process row shows its RAM) |
| F1 or ? | this help (? when the input is not focused) |
| Ctrl+Q | quit |

Paste works as usual; a multi-line paste stays one message.

## Slash commands
"""

PANELS = """
## The panels

- **RAM**: the page map of one process: one cell per page, coloured by where
  its text came from. `■` resident, `▣` pinned (never evicted), `▨` untrusted
  (device or file text), `□` swapped out to disk. Evicted cells flash red, pages
  brought back by a page fault flash green. The bar is RAM use against the
  budget; the pager warns at the yellow mark (75 %) and evicts at the red one (90 %).
- **Processes**: `ps`, live.
- **CPU**: tokens per second, context switches (and rounds that ran several
  processes in one batch), host CPU and memory, and the model's next-word
  prediction: each token's five most likely candidates (with the pid in front
  when processes take turns on the CPU).
- **Disk**: swap totals and the folders mounted from this shell.
- **Devices**: the last device calls: ✓ or ✗, pid, device, output size or
  error, duration. A risky call (risk `ask`: python, shell, web, files_write)
  opens an approval window with the exact call and where any untrusted text
  in the process's context came from: Y allows, N or Esc denies; the process
  is BLOCKED until you answer.

Under each answer, a footnote: why it stopped, tokens, speed, prompt size, and
the files a page fault read it from (file text is untrusted data: fenced and
labelled in the prompt). `/spawn TEXT` answers in another process at the same
time; its answer is marked with its pid.
"""


def help_markdown() -> str:
    rows = ["| command | does |", "|---|---|"]
    rows += [f"| `{v.usage}` | {v.help} |" for v in VERBS.values()]
    return KEYS + "\n".join(rows) + "\n" + PANELS


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90%;
        max-width: 100;
        height: 90%;
        border: round $primary;
        background: $surface;
        padding: 0 1;
    }
    """

    BINDINGS = [Binding("escape,f1,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Markdown(help_markdown())
