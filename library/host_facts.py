#!/usr/bin/python
"""Ansible module: what a role's tasks would otherwise ask the host one module run at a time."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: host_facts
short_description: What a role's tasks would ask a host one run at a time, answered in one run
description:
  - Answers the read-only questions a role asks before it changes a host, together, so that the role's
    changing tasks run only where an answer says there is work (docs/converge.md). Every option is a list
    of questions; an empty list asks nothing.
  - Read-only; it runs the same in check mode.
options:
  paths:
    description:
      - Absolute paths to look at, as C(ansible.builtin.stat) would. RV(paths) is keyed by them as given.
    type: list
    elements: str
    default: []
  packages:
    description: Debian package names; RV(packages_missing) lists those dpkg does not hold as installed.
    type: list
    elements: str
    default: []
  filesystems:
    description:
      - Absolute paths whose filesystem's size and free space to read, in MiB as C(df --block-size=1M) shows.
        RV(filesystems) is keyed by them as given.
    type: list
    elements: str
    default: []
  ports:
    description: TCP ports whose listening processes to find (with C(ss)), each with its control groups.
    type: list
    elements: int
    default: []
  users:
    description: Accounts to read.
    type: list
    elements: str
    default: []
  groups:
    description: Groups to read.
    type: list
    elements: str
    default: []
  units:
    description: systemd units whose state to read (C(systemctl show)).
    type: list
    elements: str
    default: []
  resolve:
    description: Host names to resolve on the host, as C(getent ahosts) does.
    type: list
    elements: str
    default: []
  read:
    description:
      - Absolute paths of small public text files (certificates) to return whole; never a secret's path, since
        RV(contents) shows in Ansible's output.
    type: list
    elements: str
    default: []
  checksums:
    description:
      - Absolute paths of files whose sha256 to return (RV(checksums)), which C(config_files) compares with
        what it would write (its C(known) option).
    type: list
    elements: str
    default: []
  public_keys:
    description:
      - Absolute paths of PEM private keys whose public half to return (RV(public_keys)); the key itself is
        never read out.
    type: list
    elements: str
    default: []
  virtualenvs:
    description:
      - Virtualenv directories to read without starting their Python (RV(virtualenvs)).
    type: list
    elements: str
    default: []
  distributions:
    description: Python distributions whose installed version to read in each of O(virtualenvs).
    type: list
    elements: str
    default: []
  virtualenv_files:
    description:
      - Names of files in the import directory of each of O(virtualenvs) (a file a role installs there) to
        answer as O(paths) and O(checksums) do, under their full paths; nothing for a directory that holds
        no working virtualenv.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Read-only; it runs the same in check mode and reports no change.
  diff_mode:
    support: none
    details: It changes nothing, so there is nothing to diff.
  platform:
    support: full
    platforms: posix
    details: Packages are read with dpkg (Debian and Ubuntu), units with systemd.
author: qwen-infra maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Read what the role's tasks need
  host_facts:
    paths: [/dev/nvidiactl]
    packages: [nftables]
    units: [nftables-qwen.service]
  register: host

- name: Install nftables
  ansible.builtin.apt:
    name: nftables
  when: host.packages_missing | length > 0
"""

RETURN = r"""
paths:
  description:
    - For each path of O(paths), C(exists), C(isdir) (a final link followed), C(islnk), C(lnk_source) (the
      resolved target of a link, else null), C(lnk_target) (the link's text, else null), and C(uid),
      C(gid), their names C(owner) and C(group) (the number where there is no name) and C(mode) (four
      octal digits) of the path itself (null when absent).
  type: dict
  returned: always
packages_missing:
  description: The names of O(packages) not installed, in the order given.
  type: list
  elements: str
  returned: always
filesystems:
  description: For each path of O(filesystems), C(size_mib) and C(free_mib).
  type: dict
  returned: always
port_holders:
  description: The processes listening on O(ports), each as C(pid) and C(cgroup) (/proc/PID/cgroup's text).
  type: list
  elements: dict
  returned: always
users:
  description:
    - For each name of O(users), C(uid), C(group) (the primary group's name), C(home), C(shell) and
      C(comment); null when absent.
  type: dict
  returned: always
groups:
  description: For each name of O(groups), C(gid); null when absent.
  type: dict
  returned: always
units:
  description: For each unit of O(units), C(active_state), C(unit_file_state) and C(need_daemon_reload).
  type: dict
  returned: always
addresses:
  description: For each name of O(resolve), its addresses, sorted; null when it does not resolve.
  type: dict
  returned: always
contents:
  description: For each path of O(read), its text; null when absent.
  type: dict
  returned: always
checksums:
  description: For each path of O(checksums), the sha256 of a regular file's bytes; null for anything else.
  type: dict
  returned: always
public_keys:
  description:
    - For each path of O(public_keys), the key's public half as PEM; null when absent, not an unencrypted
      PEM private key, or when Python's cryptography is not installed on the host.
  type: dict
  returned: always
virtualenvs:
  description:
    - For each directory of O(virtualenvs), C(python) (X.Y), C(purelib) (its import directory) and
      C(distributions) (each name of O(distributions) with its installed version, null when not installed);
      null when the directory holds no working virtualenv.
  type: dict
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule

try:  # installed as the qwen.infra collection
    from ansible_collections.qwen.infra.plugins.module_utils.qwen_infra import host_facts
except ImportError:  # this repository: ansible.cfg points module_utils at module_utils/
    from ansible.module_utils.qwen_infra import host_facts


def main():
    module = AnsibleModule(
        argument_spec={
            "paths": {"type": "list", "elements": "str", "default": []},
            "packages": {"type": "list", "elements": "str", "default": []},
            "filesystems": {"type": "list", "elements": "str", "default": []},
            "ports": {"type": "list", "elements": "int", "default": []},
            "users": {"type": "list", "elements": "str", "default": []},
            "groups": {"type": "list", "elements": "str", "default": []},
            "units": {"type": "list", "elements": "str", "default": []},
            "resolve": {"type": "list", "elements": "str", "default": []},
            "read": {"type": "list", "elements": "str", "default": []},
            "checksums": {"type": "list", "elements": "str", "default": []},
            "public_keys": {"type": "list", "elements": "str", "default": []},
            "virtualenvs": {"type": "list", "elements": "str", "default": []},
            "distributions": {"type": "list", "elements": "str", "default": []},
            "virtualenv_files": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )

    def run(argv):
        return module.run_command(argv, environ_update={"LC_ALL": "C"})

    try:
        answers = host_facts.gather(module.params, run)
    except (host_facts.HostFactsError, OSError) as error:
        module.fail_json(msg=f"cannot read the host's state: {error}")
    module.exit_json(changed=False, **answers)


if __name__ == "__main__":
    main()
