"""qwen-infra: the command-line side of the toolkit (sizing and planning arrive in later releases)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("qwen-infra")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+source"
