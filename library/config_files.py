#!/usr/bin/python
"""Ansible module: a role's directories and files at their declared content, owner, group and mode."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: config_files
short_description: Several directories and files at their declared content, owner, group and mode, in one run
description:
  - Brings each entry of O(files), in order, to its declared state; a directory first, then the files in
    it. What already matches is left alone, so a run with nothing to change changes nothing.
  - One module run for all of them, where C(ansible.builtin.template) costs two runs per file (a stat,
    then the copy or a file check); on a re-run with nothing to change that start-up is most of a
    role's time (docs/converge.md).
  - A changed file is written to a temporary file in its own directory with its final owner and mode,
    validated there when O(files[].validate) is given, then renamed over the old one, so no reader sees
    a half-written file or one with wider permissions than declared. A candidate that fails validation
    is removed and the old file kept; the module fails naming the path and what the command printed.
  - Render templates on the controller with C(lookup('ansible.builtin.template', ...)) and pass them as
    O(files[].content). Put a file holding a secret in a task of its own with C(no_log), so its diff and
    arguments stay out of the output while the other files' diffs are shown.
options:
  files:
    description: The entries, applied in order.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description:
          - Absolute path of the directory or file.
          - A directory's missing parents are created (root's, C(0755)), as C(ansible.builtin.file) does; a
            file's directory must exist (declare it first).
        type: path
        required: true
      state:
        description: C(directory) or C(file).
        type: str
        default: file
        choices: [file, directory]
      content:
        description: The file's whole content (required for a file, refused for a directory).
        type: str
      mode:
        description: The octal mode, as a quoted string (C("0644")).
        type: str
        required: true
      owner:
        description: The owning user; must exist on the host.
        type: str
        default: root
      group:
        description: The owning group; must exist on the host.
        type: str
        default: root
      validate:
        description:
          - A command that must succeed on the candidate file (named C(%s)) before it replaces the old
            one, as in C(ansible.builtin.template). Runs only when the content changes, and not in
            check mode.
        type: str
  known:
    description:
      - What C(host_facts) read of the host earlier in the same run (its result, with the C(paths)
        and C(checksums) answers for these entries). Where it shows every entry already as declared
        (kind, owner, group, mode and the sha256 of the content), the action plugin answers on the controller
        and the module does not run on the host; otherwise the module runs as without it.
      - Give it only when no task between that read and this one changes these paths.
    type: dict
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports what would change without writing; validate does not run.
  diff_mode:
    support: full
    details: One diff per changed entry (the content for a file, the owner, group and mode otherwise).
  platform:
    support: full
    platforms: posix
author: qwen-infra maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Write the ruleset and the unit that loads it
  config_files:
    files:
      - path: /etc/qwen-infra
        state: directory
        mode: "0755"
      - path: /etc/qwen-infra/firewall.nft
        content: "{{ lookup('ansible.builtin.template', 'firewall.nft.j2') }}"
        mode: "0644"
        validate: nft --check --file %s
  register: written
  notify: reload the firewall
"""

RETURN = r"""
changed_paths:
  description:
    - The entries that were (in check mode, would be) created or changed, in order.
    - On a failure, the ones changed before the entry that failed (they stay changed).
  type: list
  elements: str
  returned: always
checksums:
  description:
    - The sha256 of each file entry's content, by path, as C(ansible.builtin.stat) reports it; after the
      run the file holds exactly that (in check mode, would hold it). Lets a role know what a service
      should have loaded without reading the files back.
  type: dict
  returned: always
existed:
  description: The entries that existed before this run (a handler can tell a first install by it).
  type: list
  elements: str
  returned: always
confirmed_on_controller:
  description: True when O(known) showed every entry as declared and the module did not run on the host.
  type: bool
  returned: when the module did not run
"""

from ansible.module_utils.basic import AnsibleModule

try:  # installed as the qwen.infra collection
    from ansible_collections.qwen.infra.plugins.module_utils.qwen_infra import config_files
except ImportError:  # this repository: ansible.cfg points module_utils at module_utils/
    from ansible.module_utils.qwen_infra import config_files


def main():
    module = AnsibleModule(
        argument_spec={
            "files": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "path": {"type": "path", "required": True},
                    "state": {"type": "str", "default": "file", "choices": ["file", "directory"]},
                    "content": {"type": "str"},
                    "mode": {"type": "str", "required": True},
                    "owner": {"type": "str", "default": "root"},
                    "group": {"type": "str", "default": "root"},
                    "validate": {"type": "str"},
                },
            },
            # Read by the action plugin (action_plugins/config_files.py), which does not pass it on.
            "known": {"type": "dict"},
        },
        supports_check_mode=True,
    )

    def run_validate(command):
        returncode, out, err = module.run_command(command)
        return returncode, out + err

    try:
        items = [config_files.entry(spec) for spec in module.params["files"]]
        outcome = config_files.apply(
            items, check_mode=module.check_mode, want_diff=module._diff, run_validate=run_validate
        )
    except config_files.ConfigFilesError as error:
        module.fail_json(msg=str(error), changed=bool(error.changed_paths), changed_paths=error.changed_paths)
    result = {
        "changed": bool(outcome.changed_paths),
        "changed_paths": outcome.changed_paths,
        "existed": outcome.existed,
        "checksums": outcome.checksums,
    }
    if module._diff:
        result["diff"] = outcome.diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
