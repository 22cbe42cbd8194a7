"""Decide, probe by probe, whether a freshly (re)started model server is ready, still loading, or dead.

Pure functions, no Ansible imports: used by library/vllm_ready.py and unit-tested in tests/.
"""

from __future__ import annotations

import fnmatch
import os
import re

READY = "ready"
WAIT = "wait"
FAILED = "failed"


# The files vLLM loads weights from; their size sets how long a start may take.
WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt")
GIB = 1024**3


def weights_bytes(directory: str) -> int:
    """The size of the weight files directly in `directory` (a link to it is followed; 0 when absent).
    Hidden files and links inside are left out, as ansible.builtin.find leaves them by default."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    return sum(
        entry.stat(follow_symlinks=False).st_size
        for entry in entries
        if entry.is_file(follow_symlinks=False)
        and not entry.name.startswith(".")
        and any(fnmatch.fnmatch(entry.name, pattern) for pattern in WEIGHT_PATTERNS)
    )


def readiness_timeout(base_s: int, per_gib_s: float, weight_bytes: int) -> int:
    """Seconds a start may take: large models load for many minutes."""
    return int(base_s + per_gib_s * weight_bytes / GIB)


def parse_systemctl_show(text: str) -> dict[str, str]:
    """`systemctl show -p A -p B UNIT` prints KEY=VALUE lines."""
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def unit_verdict(unit: dict[str, str], restarts_at_start: int) -> tuple[str, str]:
    """A unit that failed or was restarted by systemd while we waited will not become ready by waiting."""
    state = unit.get("ActiveState", "")
    if state == "failed":
        return FAILED, f"the unit failed ({unit.get('Result', 'unknown result')})"
    if state in ("inactive", "deactivating"):
        return FAILED, f"the unit is {state}"
    restarts = int(unit.get("NRestarts", "0") or 0)
    if restarts > restarts_at_start:
        return FAILED, f"the server crashed and systemd restarted it ({restarts - restarts_at_start} times)"
    return WAIT, f"the unit is {state or 'in an unknown state'}"


def models_verdict(status: int | None, body: object, model: str) -> tuple[str, str]:
    """/v1/models must answer 200 and list the served model."""
    if status is None:
        return WAIT, "no answer yet"
    if status == 401:
        return FAILED, "the server refused the API key (401): the key in the environment file differs"
    if status != 200:
        return WAIT, f"HTTP {status}"
    listed = body.get("data", []) if isinstance(body, dict) else []
    served = [item.get("id") for item in listed if isinstance(item, dict)]
    if model not in served:
        return FAILED, f"the server answers but serves {served}, not {model!r}"
    return READY, "model listed"


def completion_verdict(status: int | None, body: object) -> tuple[str, str]:
    """A one-token completion proves the engine runs, not just the HTTP front end."""
    if status != 200:
        return FAILED, f"the one-token completion answered HTTP {status}"
    choices = (body or {}).get("choices", []) if isinstance(body, dict) else []
    if len(choices) != 1:
        return FAILED, f"the one-token completion returned {len(choices)} choices"
    return READY, "completion answered"


def journal_text(message: object) -> str:
    """A MESSAGE field of `journalctl --output json`: text, or a list of bytes when it is not UTF-8 or
    holds control characters (colour codes, for one)."""
    if isinstance(message, list):
        return bytes(message).decode("utf-8", "replace")
    return "" if message is None else str(message)


def invocation_lines(
    entries: list[dict[str, object]], invocation: str, main_pid: str, since_us: int
) -> list[str]:
    """The log lines of one start of a unit, from `journalctl --output json` entries of this boot.

    journald tags a line with its start's invocation ID by looking the writer's unit up when it reads
    the line; a process that exits right after writing may be gone by then, and its last lines, often
    the ones that say why it failed, come untagged. An untagged line counts when the start's main
    process wrote it (its PID: a service's output stream carries the PID that opened it) since that
    process started (`since_us`, the boot's monotonic clock): never a line of an earlier start."""
    lines = []
    for entry in entries:
        tag = entry.get("_SYSTEMD_INVOCATION_ID")
        if tag:
            ours = tag == invocation
        else:
            written_us = int(str(entry.get("__MONOTONIC_TIMESTAMP") or 0))
            ours = bool(main_pid) and entry.get("_PID") == main_pid and written_us >= since_us
        if ours:
            lines.append(journal_text(entry.get("MESSAGE")))
    return lines


# vLLM's own error records ("ERROR 12-02 10:00:00 [core.py:708] ...", maybe behind a process prefix such
# as "(EngineCore_DP0 pid=42) ") and the last line of a Python traceback ("ValueError: ...").
_VLLM_ERROR = re.compile(r"(^|\) )ERROR \d")
# Indented lines under an exception that are not its detail: traceback frames and pydantic's link.
_NOT_DETAIL = ("File ", "For further information", "^")
_EXCEPTION = re.compile(
    r"^(?:\(\S+ pid=\d+\) )?(?:[A-Za-z_][\w.]*\.)?[A-Za-z_]\w*(?:Error|Exception)(?::.*)?$"
)


def error_lines(lines: list[str], limit: int = 8) -> list[str]:
    """The lines of one start's log that say why it failed: vLLM's ERROR records and exception lines
    with the indented detail under them (pydantic's "Value error, ..."), in order, repeats dropped, the
    last `limit` of them."""
    picked: list[str] = []
    in_exception = False
    for line in lines:
        text = line.rstrip()
        detail = in_exception and text[:1].isspace() and not text.lstrip().startswith(_NOT_DETAIL)
        if (_VLLM_ERROR.search(text) or _EXCEPTION.match(text) or detail) and text not in picked:
            picked.append(text)
        in_exception = bool(_EXCEPTION.match(text)) or detail
    return picked[-limit:]


def failure_report(reason: str, lines: list[str], tail: int = 40) -> str:
    """What a failed start shows: the reason, vLLM's error lines first, then the end of this start's log."""
    errors = error_lines(lines)
    parts = [reason]
    parts.append("Error lines of this start:\n" + ("\n".join(errors) if errors else "(none)"))
    parts.append("Last lines of this start:\n" + ("\n".join(lines[-tail:]) if lines else "(no output)"))
    return "\n".join(parts)
