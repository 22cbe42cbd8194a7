"""Put the repository root, lab/ and module_utils/ on sys.path so tests import them without install."""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "lab", REPO / "module_utils"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
