"""The sizing engine and nvidia-smi parsers, imported from the repository's module_utils/.

They live in module_utils/ because Ansible ships them to hosts; this module puts that directory on
sys.path once so the CLI (and the Pulumi program) use the same files, not a copy.
"""

from __future__ import annotations

import sys
from pathlib import Path

MODULE_UTILS = Path(__file__).resolve().parents[1] / "module_utils"
if str(MODULE_UTILS) not in sys.path:
    sys.path.insert(0, str(MODULE_UTILS))

import nvidia_smi  # noqa: E402
import qwen_catalogs  # noqa: E402
import qwen_sizing  # noqa: E402

__all__ = ["MODULE_UTILS", "nvidia_smi", "qwen_catalogs", "qwen_sizing"]
