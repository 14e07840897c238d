"""llmos.memory: RAM, swap and disk. Knows nothing of the kernel.

- ``page.py``     the page record, origins and trust
- ``ram.py``      address spaces and the pager (pressure, eviction, page faults)
- ``backing.py``  the pager's backing store: the journal, and swap opened on first need
- ``swap.py``     swap on the disk and hybrid (vector + lexical) search
- ``disk.py``     chromadb, embedded or a server
- ``embed.py``    the offline embedding model (MiniLM int8, ONNX)
- ``fs.py``       mounting folders onto the disk
- ``journal.py``  the SQLite journal: pages, processes, audit, kernel log
- ``owner.py``    who runs a process now, and whether that llmos is still alive
- ``tokens.py``   offline token counting for CPUs without a tokenizer
"""
