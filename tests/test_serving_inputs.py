"""playbooks/validate.yml refuses bad serving inputs (the vllm role's, the model source) before any host
changes, every problem of a host in one run. Runs the real playbook against local hosts (the validate
plays only read variables and, on the controller, the model directory)."""

from tests.test_front_door_inputs import Vaulted, inventory, validate

CHECKS_PLAY = "PLAY [Check every serving host's inputs]"
SOURCE_PLAY = "PLAY [Check every serving host's model source and quantization inputs]"


def test_every_problem_of_the_vllm_role_s_inputs_is_named_in_one_run(tmp_path):
    server = {"vllm_api_key": Vaulted("short"), "vllm_model_path": "models/qwen3-tiny"}
    rc, output = validate(inventory(tmp_path, server=server))
    assert rc != 0
    assert "vllm_api_key must be at least 16 characters" in output
    assert 'vllm_model_path must be an absolute path on the host, not "models/qwen3-tiny"' in output
    assert "vllm_api_key is in plain text" not in output  # it is vaulted
    assert CHECKS_PLAY in output and SOURCE_PLAY not in output  # stopped there, before any other check


def test_a_plain_text_api_key_is_refused(tmp_path):
    rc, output = validate(inventory(tmp_path, server={"vllm_api_key": "plain-text-key-0123456789"}))
    assert rc != 0
    assert "vllm_api_key is in plain text" in output
    assert "plain-text-key-0123456789" not in output


def test_a_model_given_twice_is_refused(tmp_path):
    server = {"model_fetch_source": "modelscope:Qwen/Qwen3-0.6B@master"}  # and model_fetch_model
    rc, output = validate(inventory(tmp_path, server=server))
    assert rc != 0
    assert "Set exactly one of model_fetch_source ('modelscope:Qwen/Qwen3-0.6B@master')" in output
    assert "config.json does not exist" not in output  # not a controller source


def test_a_controller_source_without_config_json_is_refused(tmp_path):
    missing = tmp_path / "no-model"
    server = {"model_fetch_model": "", "model_fetch_source": f"controller:{missing}"}
    rc, output = validate(inventory(tmp_path, server=server))
    assert rc != 0
    assert f"{missing}/config.json does not exist on the controller" in output
    assert "Set exactly one of" not in output
