"""Where the tests find the repository and its fixtures."""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
