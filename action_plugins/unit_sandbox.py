"""Action plugin of the unit_sandbox module: its answer depends on the host only through the nccl_fabric
role's environment file, so where the task's `known` (a host_facts result read earlier in the same run)
holds the text of the file the task names, it is computed on the controller instead of starting the
module on the host (docs/converge.md). Without it, the module runs as before."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

try:  # installed as the qwen.infra collection
    from ansible_collections.qwen.infra.plugins.module_utils.qwen_infra import unit_sandbox
except ImportError:  # this repository: the qwen_infra package is installed in the controller's virtualenv
    from qwen_infra import unit_sandbox


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False  # a connection is made only when the module has to run

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        known = args.pop("known", None)
        # Named by the task, or the module runs: the defaults are the module's own.
        env_file, fabric = args.get("nccl_env_file"), args.get("fabric")
        contents = (known or {}).get("contents") or {}
        if env_file in contents and fabric and args.get("device") in unit_sandbox.DEVICES:
            try:
                answer = unit_sandbox.answer(args["device"], fabric, contents[env_file], args.get("nccl_log"))
            except unit_sandbox.SandboxError:
                answer = None  # the module fails with its own message
            if answer is not None:
                result.update(changed=False, computed_on_controller=True, **answer)
                return result
        result.update(self._execute_module(module_args=args, task_vars=task_vars))
        return result
