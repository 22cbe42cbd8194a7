"""The AWS instance catalog is consistent with itself, with the sizing engine's GPU catalog, and with
the EFA facts of the reference (32 EFA on p5/p5e, 16 on p5en, 4 on p4d/p4de)."""

import re

import pytest
from qwen_infra.catalogs import aws_instances
from qwen_infra.catalogs.gpus import GPUS

REQUIRED_TYPES = {
    "p4d.24xlarge", "p4de.24xlarge", "p5.48xlarge", "p5e.48xlarge", "p5en.48xlarge",
    "g5.xlarge", "g5.12xlarge", "g5.48xlarge", "g6e.xlarge", "g6e.12xlarge", "g6e.48xlarge",
}  # fmt: skip
FIELDS = {
    "gpus", "gpu", "efa_interfaces", "network_cards", "nvswitch", "nvme_gb", "vcpus", "memory_gib",
    "usd_per_hour", "price_date", "price_source", "price_status",
}  # fmt: skip


def test_catalog_holds_the_required_types_with_every_field():
    assert set(aws_instances.INSTANCES) >= REQUIRED_TYPES
    for name, entry in aws_instances.INSTANCES.items():
        assert set(entry) == FIELDS, name


@pytest.mark.parametrize("name", sorted(aws_instances.INSTANCES))
def test_entry_is_plausible(name):
    entry = aws_instances.INSTANCES[name]
    assert entry["gpu"] in GPUS, "the sizing engine must know the GPU"
    assert entry["gpus"] in {1, 4, 8}
    assert 0 <= entry["efa_interfaces"] <= entry["network_cards"], "one EFA interface per network card"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", entry["price_date"])
    assert entry["price_source"]
    if entry["usd_per_hour"] is None:
        assert entry["price_status"] == "unverified"
    else:
        assert entry["price_status"] == "secondary"
        assert entry["usd_per_hour"] > 0


@pytest.mark.parametrize(
    ("name", "efa", "nvswitch"),
    [
        ("p5.48xlarge", 32, True),
        ("p5e.48xlarge", 32, True),
        ("p5en.48xlarge", 16, True),
        ("p4d.24xlarge", 4, True),
        ("p4de.24xlarge", 4, True),
        ("g6e.48xlarge", 4, False),
        ("g5.xlarge", 0, False),
    ],
)
def test_efa_and_nvswitch_match_the_reference(name, efa, nvswitch):
    entry = aws_instances.INSTANCES[name]
    assert (entry["efa_interfaces"], entry["nvswitch"]) == (efa, nvswitch)


def test_g5_has_at_most_one_efa():
    assert all(e["efa_interfaces"] <= 1 for n, e in aws_instances.INSTANCES.items() if n.startswith("g5."))


def test_lookups():
    assert aws_instances.instance("p5.48xlarge")["gpu"] == "H100-80GB"
    assert aws_instances.types_with_gpu("H200-141GB") == ["p5e.48xlarge", "p5en.48xlarge"]
    with pytest.raises(LookupError, match=r"unknown instance type 'p9\.huge'.*p5\.48xlarge"):
        aws_instances.instance("p9.huge")
