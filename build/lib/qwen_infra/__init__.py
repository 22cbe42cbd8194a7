"""qwen-infra's one Python package: the sizing engine, the catalogs, the parsers and the CLI.

It lives under module_utils/ because Ansible ships its pure parts to hosts with the modules in
library/ (they import it as ansible.module_utils.qwen_infra, or through the qwen.infra collection);
the qwen-infra command, the Pulumi program, the tools and the tests import it by name (qwen_infra),
installed with `pip install -e .`. Keep this file light: Ansible sends it to every host.
"""

# The project's version, stated once: pyproject.toml and galaxy.yml read it from here.
__version__ = "0.2.0"
