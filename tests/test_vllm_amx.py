"""The CPU build's AMX request (roles/vllm/files/qwen_vllm_amx.py and its .pth hook), in a fresh Python
process: the hook runs the module when the process starts, and afterwards the kernel reports the AMX tile
state as permitted to that process where the CPU has AMX, and not where it has none."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.paths import REPO

FILES = REPO / "roles" / "vllm" / "files"
AMX_FILES = ("qwen_vllm_amx.py", "qwen_vllm_amx.pth")

# What the kernel says after start-up, asked with other arch_prctl calls than the module's
# (<asm/prctl.h>: ARCH_GET_XCOMP_SUPP, ARCH_GET_XCOMP_PERM).
PROBE = """
import ctypes, json, site, sys
site.addsitedir(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
supported, permitted = ctypes.c_uint64(0), ctypes.c_uint64(0)
libc.syscall(158, 0x1021, ctypes.byref(supported))
libc.syscall(158, 0x1022, ctypes.byref(permitted))
module = sys.modules.get("qwen_vllm_amx")
print(json.dumps({"imported": module is not None, "granted": getattr(module, "GRANTED", None),
                  "supported": supported.value, "permitted": permitted.value}))
"""
XTILEDATA = 1 << 18


@pytest.fixture
def started(tmp_path):
    """A new Python process whose site directory holds the two files, as the virtualenv's does."""
    for name in AMX_FILES:
        shutil.copy(FILES / name, tmp_path / name)
    done = subprocess.run(
        [sys.executable, "-S", "-c", PROBE, str(tmp_path)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def test_the_hook_runs_the_module_when_a_process_starts(started):
    assert started["imported"] is True


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="AMX is an x86-64 state component")
def test_the_process_may_use_amx_tiles_exactly_where_the_cpu_has_them(started):
    has_amx = bool(started["supported"] & XTILEDATA)
    assert started["granted"] is has_amx
    assert bool(started["permitted"] & XTILEDATA) is has_amx
