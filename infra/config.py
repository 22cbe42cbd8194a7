"""The stack's configuration: the one typed loader, validated before any resource exists.

Every key is documented in Pulumi.yaml (tests check that file and this one agree). Values come either
from Pulumi (`from_pulumi`, strings or JSON as the CLI stores them) or from a stack file read by
`python infra/plan.py` (`from_mapping`, native YAML values); both go through `load`, so a bad value
is refused the same way, with every problem listed at once.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields

from qwen_infra.catalogs import aws_instances
from qwen_infra.names import nearest_name
from qwen_infra.sizing.devices import gpu_from_catalog
from qwen_infra.sizing.errors import SizingError
from qwen_infra.sizing.vllm_rules import KV_CACHE_DTYPES

PROJECT = "qwen-infra"
REGION_KEY = "aws:region"
# Providers the program uses: their configuration namespaces are theirs to check.
PROVIDERS = ("aws",)
# The widest public network an admin port (SSH, the API port) may be opened to without
# allowWideAdminCidr: a /16 is 65,536 addresses, far more than any admin or client network needs.
WIDEST_PUBLIC_ADMIN_PREFIX = {4: 16, 6: 48}
DLAMI_PARAMETER = "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id"

PRECISIONS = ("auto", "bf16", "fp8", "awq", "gptq")
ACCESS_MODES = ("ssm", "ssh")
MAX_NODES_LIMIT = 16
MIN_ROOT_VOLUME_GIB = 100  # the Deep Learning AMI alone takes about 75 GB


class ConfigError(ValueError):
    """The stack configuration cannot be deployed as written."""


@dataclass(frozen=True)
class StackConfig:
    """Typed stack configuration. Field `foo_bar` is the config key `qwen-infra:fooBar`."""

    # What to serve, and how much of it (the sizing engine's inputs).
    model: str
    availability_zone: str
    ssh_key_name: str
    region: str
    precision: str = "auto"
    max_model_len: int = 0
    concurrency: int = 1
    kv_cache_dtype: str = "auto"
    # Which hardware may be chosen, or the hardware itself.
    instance_type: str = ""
    instance_count: int = 0
    instance_types: tuple[str, ...] = ()
    gpu_types: tuple[str, ...] = ()
    max_nodes: int = 4
    capacity_reservation_id: str = ""
    capacity_block: bool = False
    placement_group: str = ""
    # Where the cluster lives.
    vpc_id: str = ""
    subnet_id: str = ""
    vpc_cidr: str = "10.42.0.0/16"
    public_ip: bool = True
    # Who may reach it.
    access: str = "ssm"
    admin_cidr: str = ""
    allow_wide_admin_cidr: bool = False
    api_port: int = 8000
    load_balancer: bool = True
    load_balancer_instance_type: str = "c7i.large"
    client_cidrs: tuple[str, ...] = ()
    monitoring: bool = True
    monitoring_instance_type: str = "m7i.large"
    # The hosts themselves.
    ami_id: str = ""
    ami_ssm_parameter: str = DLAMI_PARAMETER
    root_volume_gib: int = 200
    kms_key_id: str = ""
    model_mirror_bucket: str = ""
    model_mirror_prefix: str = "models/"
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def new_vpc(self) -> bool:
        return not self.vpc_id

    @property
    def quantization_flag(self) -> str | None:
        """The engine's with_quantization flag for `precision` (None: as the checkpoint says)."""
        return {"auto": None, "bf16": "none"}.get(self.precision, self.precision)


def config_key(field_name: str) -> str:
    """`max_model_len` -> `maxModelLen` (Pulumi's camelCase key convention)."""
    head, *rest = field_name.split("_")
    return head + "".join(part.capitalize() for part in rest)


# The config keys this project declares (the region is the AWS provider's own `aws:region`).
KEYS = {config_key(f.name): f for f in fields(StackConfig) if f.name != "region"}
# Keys that were once accepted and now are refused, with what to do instead.
REMOVED = {
    "apiCidr": "clients reach the API only through the load balancer (the front door); "
    "put their networks in clientCidrs and give each client a key in qwen_clients",
}
REQUIRED = [key for key, f in KEYS.items() if f.default is MISSING and f.default_factory is MISSING]


def _as_str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError
    return value.strip()


def _as_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError
    return int(value)


def _as_bool(value: object) -> bool:
    text = str(value).lower()
    if text not in {"true", "false"}:
        raise TypeError
    return text == "true"


def _as_list(value: object) -> tuple[str, ...]:
    parsed = json.loads(value) if isinstance(value, str) else value
    if not isinstance(parsed, list) or not all(isinstance(item, str) for item in parsed):
        raise TypeError
    return tuple(parsed)


def _as_map(value: object) -> dict[str, str]:
    parsed = json.loads(value) if isinstance(value, str) else value
    if not isinstance(parsed, dict) or not all(isinstance(item, str) for item in parsed.values()):
        raise TypeError
    return dict(parsed)


# Field annotation -> (parser of a Pulumi string or a YAML value, what the error message asks for).
_PARSERS = {
    "str": (_as_str, "a string"),
    "int": (_as_int, "an integer"),
    "bool": (_as_bool, "true or false"),
    "tuple[str, ...]": (_as_list, "a list of strings"),
    "dict[str, str]": (_as_map, "a map of strings"),
}


def _unknown_key_problem(key: str) -> str:
    """A key that is neither the project's nor a provider's, with the one it probably meant."""
    namespace, _, name = key.rpartition(":")
    if namespace in ("", PROJECT):
        reason = "no such key"
    else:
        providers = ", ".join(PROVIDERS)
        reason = f"namespace {namespace!r} is neither {PROJECT} nor a provider it uses ({providers})"
    guess = nearest_name(name, KEYS)
    hint = f"; did you mean {PROJECT}:{guess}?" if guess else ""
    spelled = key if namespace else f"{PROJECT}:{key}"
    return f"unknown config key {spelled} ({reason}){hint} Documented keys are in infra/Pulumi.yaml."


def _coerce(key: str, kind: str, value: object, problems: list[str]) -> object:
    parse, expected = _PARSERS[kind]
    try:
        return parse(value)
    except (TypeError, ValueError):
        problems.append(f"{PROJECT}:{key} must be {expected}, not {value!r}")
        return None


def load(values: Mapping[str, object]) -> StackConfig:
    """Build and validate a StackConfig from config values keyed `key` or `qwen-infra:key`."""
    problems: list[str] = []
    bare = {key.removeprefix(f"{PROJECT}:"): value for key, value in values.items() if value is not None}
    for key in sorted(bare):
        if key in REMOVED:
            problems.append(f"{PROJECT}:{key} is no longer supported: {REMOVED[key]}")
        elif key not in KEYS and key.rpartition(":")[0] not in PROVIDERS:
            problems.append(_unknown_key_problem(key))
    parsed: dict[str, object] = {}
    for key, spec in KEYS.items():
        if key in bare:
            parsed[spec.name] = _coerce(key, str(spec.type), bare[key], problems)
    parsed["region"] = str(bare.get(REGION_KEY, "")).strip()
    for key in REQUIRED:
        if not parsed.get(KEYS[key].name):
            problems.append(f"{PROJECT}:{key} is required: pulumi config set {key} <value>")
    if not parsed["region"]:
        problems.append("aws:region is required: pulumi config set aws:region us-east-1")
    if problems:
        raise ConfigError("; ".join(problems))
    config = StackConfig(**parsed)  # type: ignore[arg-type]
    problems = validate(config)
    if problems:
        raise ConfigError("; ".join(problems))
    return config


def _cidr_problem(key: str, value: str, *, internet_ok: bool = False, wide_ok: bool = False) -> str | None:
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return f"{PROJECT}:{key} {value!r} is not a CIDR block (e.g. 203.0.113.0/24)"
    if internet_ok:
        return None
    if network.prefixlen == 0:
        return f"{PROJECT}:{key} {value} opens this port to the whole internet: give your own network's CIDR"
    widest = WIDEST_PUBLIC_ADMIN_PREFIX[network.version]
    if not wide_ok and not network.is_private and network.prefixlen < widest:
        return (
            f"{PROJECT}:{key} {value} opens an admin port to {network.num_addresses:,} public addresses: "
            f"give your own network's CIDR (/{widest} or narrower), or set {PROJECT}:allowWideAdminCidr "
            "true if that is really meant"
        )
    return None


def validate(config: StackConfig) -> list[str]:
    """Every reason the configuration cannot be deployed (empty when it can)."""
    return [
        *_choice_problems(config),
        *_hardware_problems(config),
        *_network_problems(config),
        *_host_problems(config),
    ]


def _choice_problems(config: StackConfig) -> list[str]:
    problems = []
    choices = {"precision": PRECISIONS, "kvCacheDtype": KV_CACHE_DTYPES, "access": ACCESS_MODES}
    for key, allowed in choices.items():
        value = getattr(config, KEYS[key].name)
        if value not in allowed:
            problems.append(f"{PROJECT}:{key} must be one of {', '.join(allowed)}, not {value!r}")
    for key, value, low in (("maxModelLen", config.max_model_len, 0), ("concurrency", config.concurrency, 1)):
        if value < low:
            problems.append(f"{PROJECT}:{key} must be at least {low}, not {value}")
    return problems


def _hardware_problems(config: StackConfig) -> list[str]:
    problems = []
    if not 1 <= config.max_nodes <= MAX_NODES_LIMIT:
        problems.append(f"{PROJECT}:maxNodes must be 1-{MAX_NODES_LIMIT}, not {config.max_nodes}")
    if config.instance_count < 0 or (config.instance_count and not config.instance_type):
        problems.append(f"{PROJECT}:instanceCount needs instanceType and must be positive")
    catalog = ", ".join(sorted(aws_instances.INSTANCES))
    problems += [
        f"{PROJECT}: instance type {name!r} is not in the catalog: one of {catalog}"
        for name in filter(None, (config.instance_type, *config.instance_types))
        if name not in aws_instances.INSTANCES
    ]
    for gpu in config.gpu_types:
        try:
            gpu_from_catalog(gpu)
        except SizingError as error:
            problems.append(f"{PROJECT}:gpuTypes: {error}")
    if config.capacity_block and not config.capacity_reservation_id:
        problems.append(f"{PROJECT}:capacityBlock needs capacityReservationId (the Capacity Block's id)")
    return problems


def _network_problems(config: StackConfig) -> list[str]:
    problems = []
    zone = config.availability_zone
    if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d[a-z]", zone) or not zone.startswith(config.region):
        problems.append(
            f"{PROJECT}:availabilityZone {zone!r} is not a zone of aws:region {config.region!r} "
            f"(e.g. {config.region}a)"
        )
    if bool(config.vpc_id) != bool(config.subnet_id):
        problems.append(f"{PROJECT}:vpcId and subnetId go together (an existing VPC and one subnet in it)")
    if config.access == "ssh" and not config.admin_cidr:
        problems.append(f"{PROJECT}:access ssh needs adminCidr, the only network SSH is opened to")
    cidrs = [("adminCidr", config.admin_cidr)]
    cidrs += [("vpcCidr", config.vpc_cidr)] if config.new_vpc else []
    wide_ok = config.allow_wide_admin_cidr
    problems += filter(None, (_cidr_problem(key, value, wide_ok=wide_ok) for key, value in cidrs if value))
    # The load balancer's HTTPS listener may be public on purpose; the API port and SSH never are.
    problems += filter(None, (_cidr_problem("clientCidrs", c, internet_ok=True) for c in config.client_cidrs))
    if not 1 <= config.api_port <= 65535 or config.api_port == 22:
        problems.append(f"{PROJECT}:apiPort must be a port other than 22, not {config.api_port}")
    return problems


def _host_problems(config: StackConfig) -> list[str]:
    problems = []
    if config.root_volume_gib < MIN_ROOT_VOLUME_GIB:
        problems.append(f"{PROJECT}:rootVolumeGib must be at least {MIN_ROOT_VOLUME_GIB}")
    if config.model_mirror_prefix.startswith("/"):
        problems.append(f"{PROJECT}:modelMirrorPrefix is an S3 key prefix: no leading '/'")
    return problems
