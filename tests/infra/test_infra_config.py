"""The stack configuration: Pulumi.yaml documents exactly the keys config.py loads, with the same
types and defaults; bad values are refused with every problem named."""

import json
from dataclasses import MISSING

import config
import pytest
import yaml
from pulumi_harness import INFRA, as_pulumi_config, stack_values

PULUMI_TYPES = {"str": "string", "int": "integer", "bool": "boolean", "tuple[str, ...]": "array"}
BASE = {
    "aws:region": "us-east-1",
    "qwen-infra:model": "Qwen/Qwen3-32B-AWQ",
    "qwen-infra:availabilityZone": "us-east-1a",
    "qwen-infra:sshKeyName": "ops",
}


def declared():
    return yaml.safe_load((INFRA / "Pulumi.yaml").read_text())["config"]


def test_pulumi_yaml_declares_every_key_with_the_loader_type_and_default():
    schema = declared()
    # tags is a map, which project config cannot declare: Pulumi.yaml documents it in a comment.
    assert set(schema) == set(config.KEYS) - {"tags"}
    for key, spec in schema.items():
        field = config.KEYS[key]
        assert spec["type"] == PULUMI_TYPES[str(field.type)], key
        assert spec["description"], key
        if field.default is MISSING:
            assert "default" not in spec, f"{key} is required: Pulumi must refuse a stack without it"
        else:
            assert spec["default"] == (
                list(field.default) if isinstance(field.default, tuple) else field.default
            ), key
    assert "tags" in (INFRA / "Pulumi.yaml").read_text()


def test_required_keys_are_the_ones_without_defaults():
    assert sorted(config.REQUIRED) == ["availabilityZone", "model", "sshKeyName"]


def test_strings_from_pulumi_and_yaml_values_load_the_same():
    values = stack_values("qwen3-32b-h100")
    from_cli = json.loads(as_pulumi_config(values))
    assert config.load(values) == config.load(from_cli)
    loaded = config.load(from_cli)
    assert loaded.gpu_types == ("H100-80GB",)
    assert loaded.concurrency == 48
    assert loaded.tags == {"team": "ml-platform"}


def test_missing_required_keys_are_all_named():
    with pytest.raises(config.ConfigError) as error:
        config.load({"qwen-infra:precision": "bf16"})
    message = str(error.value)
    for key in ("qwen-infra:model", "qwen-infra:availabilityZone", "qwen-infra:sshKeyName", "aws:region"):
        assert key in message


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"qwen-infra:modle": "x"}, "unknown config key qwen-infra:modle [(]no such key[)]; did you mean"),
        pytest.param(
            {"qwen_infra:maxModelLen": "4096"},
            "namespace 'qwen_infra' is neither qwen-infra nor a provider[^;]*"
            "; did you mean qwen-infra:maxModelLen[?]",
            id="foreign-namespace-named-with-the-project-key-it-meant",
        ),
        ({"qwen-infra:adminCidr": "52.0.0.0/15"}, "opens an admin port to 131,072 public addresses"),
        pytest.param(
            {"qwen-infra:adminCidr": "2600:1f00::/32"},
            "give your own network's CIDR [(]/48 or narrower",
            id="ipv6-has-its-own-widest-prefix",
        ),
        ({"qwen-infra:concurrency": "many"}, "qwen-infra:concurrency must be an integer"),
        ({"qwen-infra:access": "ssh"}, "access ssh needs adminCidr"),
        ({"qwen-infra:access": "ssh", "qwen-infra:adminCidr": "0.0.0.0/0"}, "whole internet"),
        (
            {"qwen-infra:apiCidr": "203.0.113.0/24"},
            "apiCidr is no longer supported: clients reach the API only",
        ),
        ({"qwen-infra:adminCidr": "10.0.0.300/8"}, "is not a CIDR block"),
        ({"qwen-infra:availabilityZone": "us-west-2a"}, "not a zone of aws:region"),
        ({"qwen-infra:instanceType": "p9.huge"}, "instance type 'p9.huge' is not in the catalog"),
        ({"qwen-infra:gpuTypes": '["B200"]'}, "unknown GPU 'B200'"),
        ({"qwen-infra:instanceCount": "2"}, "instanceCount needs instanceType"),
        ({"qwen-infra:capacityBlock": "true"}, "capacityBlock needs capacityReservationId"),
        ({"qwen-infra:vpcId": "vpc-1"}, "vpcId and subnetId go together"),
        ({"qwen-infra:precision": "int3"}, "precision must be one of"),
        ({"qwen-infra:kvCacheDtype": "fp4"}, "kvCacheDtype must be one of"),
        ({"qwen-infra:apiPort": "22"}, "apiPort must be a port other than 22"),
        ({"qwen-infra:rootVolumeGib": "50"}, "rootVolumeGib must be at least 100"),
        ({"qwen-infra:maxNodes": "0"}, "maxNodes must be 1-16"),
        ({"qwen-infra:tags": '["not", "a", "map"]'}, "qwen-infra:tags must be a map of strings"),
    ],
)
def test_bad_values_are_refused_with_the_key_named(changes, message):
    with pytest.raises(config.ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        config.load({**BASE, **changes})


def test_load_balancer_clients_may_be_the_internet_on_purpose():
    loaded = config.load({**BASE, "qwen-infra:clientCidrs": '["0.0.0.0/0"]'})
    assert loaded.client_cidrs == ("0.0.0.0/0",)


def test_precision_maps_to_the_engine_flag():
    assert config.load(BASE).quantization_flag is None
    assert config.load({**BASE, "qwen-infra:precision": "bf16"}).quantization_flag == "none"
    assert config.load({**BASE, "qwen-infra:precision": "fp8"}).quantization_flag == "fp8"


@pytest.mark.parametrize(
    "values",
    [
        # private: the operator's own network, however wide
        pytest.param({"qwen-infra:adminCidr": "10.0.0.0/8"}, id="private-however-wide"),
        # public, at the widest prefix allowed (/15 is refused). 203.0.113.0/24 would not do: Python's
        # ipaddress counts the documentation ranges as private.
        pytest.param({"qwen-infra:adminCidr": "52.0.0.0/16"}, id="public-at-the-widest-prefix"),
        pytest.param(
            {"qwen-infra:adminCidr": "52.0.0.0/15", "qwen-infra:allowWideAdminCidr": "true"},
            id="wider-when-allowed",
        ),
        # the aws provider's own keys are its to check
        pytest.param({"aws:profile": "ops"}, id="provider-key"),
    ],
)
def test_deliberate_networks_and_provider_keys_are_accepted(values):
    assert config.load({**BASE, **values})
