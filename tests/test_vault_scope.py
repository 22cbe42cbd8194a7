"""ansible.cfg loads no vault password: a value encrypted under the lab's vault id opens only where the
lab's password is passed explicitly, never for another inventory by default."""

import configparser
import os
import subprocess
import sys
from pathlib import Path

from tests.paths import REPO

LAB_PASSWORD = REPO / "inventories" / "lab" / "vault-password.txt"
ANSIBLE = Path(sys.executable).parent


def test_ansible_cfg_names_no_vault_password():
    config = configparser.ConfigParser()
    config.read(REPO / "ansible.cfg")
    defaults = dict(config["defaults"])
    assert not {"vault_identity_list", "vault_password_file", "vault_identity"} & set(defaults)


def test_a_lab_encrypted_value_opens_only_with_the_lab_password_given(tmp_path):
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_HOME": str(tmp_path)}
    env.pop("ANSIBLE_VAULT_IDENTITY_LIST", None)
    encrypted = subprocess.run(
        [ANSIBLE / "ansible-vault", "encrypt_string", "--vault-id", f"lab@{LAB_PASSWORD}",
         "--encrypt-vault-id", "lab", "--name", "site_secret", "opens-only-in-the-lab"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text("---\n" + encrypted)
    (tmp_path / "hosts.yml").write_text("all:\n  hosts:\n    somewhere:\n      ansible_connection: local\n")

    def show(*extra):
        return subprocess.run(
            [ANSIBLE / "ansible", "somewhere", "-i", tmp_path / "hosts.yml", "-m", "ansible.builtin.debug",
             "-a", "var=site_secret", *extra],
            cwd=REPO, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip

    refused = show()
    assert refused.returncode != 0
    assert "opens-only-in-the-lab" not in refused.stdout
    opened = show("--vault-id", f"lab@{LAB_PASSWORD}")
    assert "opens-only-in-the-lab" in opened.stdout, opened.stdout + opened.stderr
