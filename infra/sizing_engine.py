"""The sizing engine and the catalogs, imported from the repository's module_utils/.

They live in module_utils/ because Ansible ships them to hosts; putting that directory on sys.path here
means the Pulumi program, `python infra/plan.py` and the Ansible preflight all run the same files.
"""

from __future__ import annotations

import sys
from pathlib import Path

MODULE_UTILS = Path(__file__).resolve().parents[1] / "module_utils"
if str(MODULE_UTILS) not in sys.path:
    sys.path.insert(0, str(MODULE_UTILS))

import aws_instances  # noqa: E402
import qwen_catalogs  # noqa: E402
import qwen_sizing  # noqa: E402

__all__ = ["MODULE_UTILS", "aws_instances", "qwen_catalogs", "qwen_sizing"]
