"""llmos.kernel: the CPU and everything that shares it.

- ``cpu.py``      the CPU interfaces: ``CPU``, and ``BatchingCPU`` (what the scheduler may batch);
                  chat templates cut per message (``TemplatedCPU``)
- ``llama.py``    ``LlamaCPU``: a GGUF run in-process by llama-cpp-python
- ``remote.py``   an OpenAI-compatible server as a CPU
- ``fakecpu.py``  a deterministic stand-in CPU for tests of scheduling logic alone
- ``step.py``     what a generation yields (``Step``, ``Generation``) and stop strings
- ``decode.py``   one generation in progress (sampling, stop strings, UTF-8, loops)
- ``grammar_sampler.py`` llama.cpp's sampling chain with the grammar checking the drawn token
- ``sampling.py`` sampling parameters, each model's recommended ones, the loop guard
- ``boot.py``     from ``--model`` / ``--cpu-url`` to running CPU cores
- ``models.py``   the models llmos ships; joining and verifying their weights
- ``hub.py``      ``llmos model pull``: one GGUF from the Hugging Face Hub, resumable, verified
- ``catalog.py``  GGUFs already on the machine: pulled, Hugging Face cache, LM Studio, Ollama, folders
- ``ggufinfo.py`` what a GGUF says about itself (quant, context, tools), read without loading it
- ``settings.py`` per-model settings: config.toml's ``[models.NAME]``
- ``hotswap.py``  switching the CPU while processes live (``/model NAME``)
- ``proc.py``     processes and their states
- ``sched.py``    the scheduler: quanta, preemption, context switches, batched rounds
- ``hibernate.py`` the pinned prefix's KV state saved across restarts
- ``heap.py``     handing freed heap back to the OS when the CPU goes idle
- ``syscall.py``  llmos's own ``<syscall>`` block: prompt, grammar, parser
- ``toolcall.py`` calls in the model's own trained format (template tools, lenient parser)
- ``dispatch.py`` system-call dispatch: grants, arguments, risk, taint, approval, audit
- ``intent.py``   whether an input asks for anything (a statement is answered without a device call),
                  and which device it must call (a sum, the time, the user's notes), with which arguments
- ``stated.py``   whether an answer states its device's result (else it is asked again)
- ``trap.py``     interrupt lines
- ``kernel.py``   the kernel: processes, turns, paging
"""
