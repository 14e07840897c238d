"""llmos.kernel: the CPU and everything that shares it.

- ``cpu.py``      the CPU interface and the llama-cpp-python implementation
- ``decode.py``   one generation in progress (sampling, stop strings, UTF-8)
- ``models.py``   the models llmos knows; joining and verifying their weights
- ``proc.py``     processes and their states
- ``sched.py``    the scheduler: quanta, preemption, context switches, batched rounds
- ``hibernate.py`` the pinned prefix's KV state saved across restarts
- ``syscall.py``  the syscall block, its grammar and parser
- ``trap.py``     interrupt lines
- ``kernel.py``   the kernel: processes, turns, paging, dispatch of system calls
"""
