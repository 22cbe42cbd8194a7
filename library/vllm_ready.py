#!/usr/bin/python
"""Ansible module: wait until a vLLM server answers, failing fast if its systemd unit dies."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vllm_ready
short_description: Wait until a vLLM server lists its model and completes one token
description:
  - Polls C(/v1/models) until the served model is listed, then asks for a one-token completion.
  - Watches the systemd unit while waiting, so a server that crashes (and is restarted by systemd) or
    fails fails this task at once instead of at the end of a long timeout.
  - On failure the message shows this start's log only (the unit's invocation that was running when the
    wait began, from the journal), vLLM's own error lines first, then its last lines.
  - Read-only; it changes nothing, so check mode only skips the probing.
options:
  base_url:
    description: Server URL without the path, e.g. http://127.0.0.1:8000.
    type: str
    required: true
  api_key:
    description: Bearer token the server expects.
    type: str
    required: true
  model:
    description: Served model name that must be listed.
    type: str
    required: true
  unit:
    description: systemd unit running the server.
    type: str
    required: true
  timeout:
    description: Seconds to wait in all, before what O(timeout_per_gib) adds.
    type: int
    required: true
  weights_dir:
    description:
      - The model directory the server loads. The size of its weight files (C(*.safetensors), C(*.bin),
        C(*.pt)) adds O(timeout_per_gib) seconds per GiB to O(timeout), since large models load for
        many minutes.
    type: path
  timeout_per_gib:
    description: Seconds added to O(timeout) per GiB of weights in O(weights_dir).
    type: float
    default: 0
  interval:
    description: Seconds between probes.
    type: int
    default: 5
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: partial
    details: It changes nothing, but in check mode it skips the probing (the server may not have been
      started) and returns C(skipped=true).
  diff_mode:
    support: none
    details: It changes nothing, so there is nothing to diff.
  platform:
    support: full
    platforms: posix
    details: Hosts with systemd (the unit's state and journal are read with systemctl and journalctl).
author: qwen-infra maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Wait for the server
  vllm_ready:
    base_url: http://127.0.0.1:8000
    api_key: "{{ vllm_api_key }}"
    model: qwen3-tiny
    unit: vllm.service
    timeout: 900
"""

RETURN = r"""
timeout_s:
  description: Seconds the module waits in all (O(timeout) plus what the weights' size adds).
  type: int
  returned: always
elapsed_s:
  description: Seconds from the first probe until the completion answered.
  type: float
  returned: success
probes:
  description: Number of /v1/models probes sent.
  type: int
  returned: success
invocation_id:
  description: The systemd invocation of the unit that was waited for (its journal is in the message).
  type: str
  returned: when not in check mode
msg:
  description: Why the server is not ready (with this start's error lines and last log lines); in check
    mode, that the probing was skipped.
  type: str
  returned: failure or check mode
"""

import json
import time
import urllib.error
import urllib.request

from ansible.module_utils.basic import AnsibleModule

try:  # installed as the qwen.infra collection
    from ansible_collections.qwen.infra.plugins.module_utils.qwen_infra import service_readiness
except ImportError:  # this repository: ansible.cfg points module_utils at module_utils/
    from ansible.module_utils.qwen_infra import service_readiness


def http_json(url, api_key, payload=None, timeout=30):
    """Return (status, parsed body); status None when nothing answers yet."""
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")  # noqa: S310
    request.add_header("Authorization", f"Bearer {api_key}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310 - local server URL
            return reply.status, json.loads(reply.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None
    except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
        return None, None


def read_unit(module, unit):
    properties = (
        "ActiveState",
        "Result",
        "NRestarts",
        "InvocationID",
        "ExecMainPID",
        "ExecMainStartTimestampMonotonic",
    )
    command = ["systemctl", "show", *(arg for name in properties for arg in ("-p", name)), unit]
    rc, out, err = module.run_command(command)
    if rc != 0:
        module.fail_json(msg=f"cannot read the state of {unit}: {err.strip()}")
    return service_readiness.parse_systemctl_show(out)


def journal_of(module, unit, start):
    """The log lines of one start of the unit (`start`: its state when the wait began), or the end of
    the unit's journal when systemd names no invocation."""
    invocation = start.get("InvocationID", "")
    main_pid = start.get("ExecMainPID", "")
    main_pid = "" if main_pid == "0" else main_pid  # systemd says 0 when there is none
    if not invocation:
        rc, out, _ = module.run_command(
            ["journalctl", "--unit", unit, "--lines", "200", "--no-pager", "--output", "cat"]
        )
        return out.splitlines() if rc == 0 else []
    # This start's tagged lines, or (journalctl's "+") lines its main process wrote: see invocation_lines.
    matches = [f"_SYSTEMD_INVOCATION_ID={invocation}"]
    if main_pid:
        matches += ["+", f"_SYSTEMD_UNIT={unit}", f"_PID={main_pid}"]
    rc, out, _ = module.run_command(
        ["journalctl", "--boot", "--all", "--no-pager", "--output", "json", *matches]
    )
    entries = [json.loads(line) for line in out.splitlines() if line.startswith("{")] if rc == 0 else []
    since_us = int(start.get("ExecMainStartTimestampMonotonic", "0") or 0)
    return service_readiness.invocation_lines(entries, invocation, main_pid, since_us)


def main():
    module = AnsibleModule(
        argument_spec={
            "base_url": {"type": "str", "required": True},
            "api_key": {"type": "str", "required": True, "no_log": True},
            "model": {"type": "str", "required": True},
            "unit": {"type": "str", "required": True},
            "timeout": {"type": "int", "required": True},
            "weights_dir": {"type": "path"},
            "timeout_per_gib": {"type": "float", "default": 0},
            "interval": {"type": "int", "default": 5},
        },
        supports_check_mode=True,
    )
    params = module.params
    weight_bytes = service_readiness.weights_bytes(params["weights_dir"]) if params["weights_dir"] else 0
    timeout_s = service_readiness.readiness_timeout(
        params["timeout"], params["timeout_per_gib"], weight_bytes
    )
    if module.check_mode:
        module.exit_json(
            changed=False, skipped=True, msg="probing skipped in check mode", timeout_s=timeout_s
        )

    started = time.monotonic()
    unit_at_start = read_unit(module, params["unit"])
    restarts_at_start = int(unit_at_start.get("NRestarts", "0") or 0)
    invocation = unit_at_start.get("InvocationID", "")

    def fail(reason, probes):
        """Fail with this start's log: the invocation that was running when the wait began."""
        lines = journal_of(module, params["unit"], unit_at_start)
        module.fail_json(
            msg=service_readiness.failure_report(reason, lines),
            probes=probes,
            invocation_id=invocation,
            timeout_s=timeout_s,
        )

    probes, reason = 0, "no probe sent"
    while time.monotonic() - started < timeout_s:
        verdict, reason = service_readiness.unit_verdict(read_unit(module, params["unit"]), restarts_at_start)
        if verdict == service_readiness.FAILED:
            fail(f"{params['unit']}: {reason}", probes)
        probes += 1
        status, body = http_json(f"{params['base_url']}/v1/models", params["api_key"])
        verdict, reason = service_readiness.models_verdict(status, body, params["model"])
        if verdict == service_readiness.FAILED:
            fail(reason, probes)
        if verdict == service_readiness.READY:
            status, body = http_json(
                f"{params['base_url']}/v1/completions",
                params["api_key"],
                {"model": params["model"], "prompt": "Hello", "max_tokens": 1},
                timeout=120,
            )
            verdict, reason = service_readiness.completion_verdict(status, body)
            if verdict == service_readiness.FAILED:
                fail(reason, probes)
            module.exit_json(
                changed=False,
                elapsed_s=round(time.monotonic() - started, 1),
                probes=probes,
                invocation_id=invocation,
                timeout_s=timeout_s,
            )
        time.sleep(params["interval"])
    fail(f"not ready after {timeout_s} s (last: {reason})", probes)


if __name__ == "__main__":
    main()
