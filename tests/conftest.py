"""Shared test helpers: the repository root on sys.path so lab/ and qwen_infra/ import without install."""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for path in (REPO, REPO / "lab"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
