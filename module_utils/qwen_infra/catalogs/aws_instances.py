"""AWS GPU instance catalog: data only, plus two small lookups. Stdlib only.

The one source of truth for what an AWS GPU instance type offers. The Pulumi program (infra/) picks
hardware from it and generates each type's EFA interface layout from it; the Ansible GPU validation gate
reads the same entries to know how many GPUs, EFA devices and NVSwitches a host must show.

Fields of each entry:
  gpus, gpu            GPUs per instance and their key in catalogs.gpus.GPUS (the sizing engine's catalog)
  efa_interfaces       the most EFA interfaces the type takes (one per network card); 0 = no EFA
  network_cards        physical network cards (network card indexes 0 .. network_cards - 1)
  nvswitch             GPUs joined by NVSwitch (Fabric Manager must run on the host)
  nvme_gb              local instance-store NVMe, total GB (the model cache lives there)
  vcpus, memory_gib    host CPU and RAM
  usd_per_hour         Linux on-demand list price in PRICE_REGION, or None where AWS publishes none
  price_date           the day the newest dated source read the price (LOOKUP_DATE where undated)
  price_source         where the figure comes from
  price_status         "secondary": AWS's list price as transcribed by at least two independent public
                       sources that agree; it was NOT read from the AWS Price List API here, so check it
                       before budgeting. "unverified": no published on-demand figure was found.
Hardware facts come from the AWS EC2 accelerated-computing specifications and the EFA user guide; the
Pulumi program cross-checks efa_interfaces and network_cards against `ec2:DescribeInstanceTypes` at
preview and refuses to deploy when they disagree.
"""

from typing import TypedDict


class InstanceEntry(TypedDict):
    """One INSTANCES entry (the fields are described above)."""

    gpus: int
    gpu: str
    efa_interfaces: int
    network_cards: int
    nvswitch: bool
    nvme_gb: int
    vcpus: int
    memory_gib: int
    usd_per_hour: float | None
    price_date: str
    price_source: str
    price_status: str


PRICE_REGION = "us-east-1"
# The day these prices were looked up; used as price_date where the sources carry no date of their own.
LOOKUP_DATE = "2026-11-22"
UNDATED = " (sources undated: price_date is the lookup date)"

_AWS_PRICE_LIST = "AWS Price List (AmazonEC2 us-east-1 offer file) as transcribed by public price catalogs"
_POST_CUT = (
    _AWS_PRICE_LIST + "; figure after AWS's 2025 P4/P5 on-demand price reduction (pre-cut figures such "
    "as p5 $98.32 are stale)"
)

INSTANCES: dict[str, InstanceEntry] = {
    "p4d.24xlarge": {
        "gpus": 8,
        "gpu": "A100-40GB",
        "efa_interfaces": 4,
        "network_cards": 4,
        "nvswitch": True,
        "nvme_gb": 8000,
        "vcpus": 96,
        "memory_gib": 1152,
        "usd_per_hour": 21.957642,
        "price_date": "2026-08-17",
        "price_source": _POST_CUT,
        "price_status": "secondary",
    },
    "p4de.24xlarge": {
        "gpus": 8,
        "gpu": "A100-80GB",
        "efa_interfaces": 4,
        "network_cards": 4,
        "nvswitch": True,
        "nvme_gb": 8000,
        "vcpus": 96,
        "memory_gib": 1152,
        "usd_per_hour": 27.44705,
        "price_date": "2026-09-25",
        "price_source": _POST_CUT,
        "price_status": "secondary",
    },
    "p5.48xlarge": {
        "gpus": 8,
        "gpu": "H100-80GB",
        "efa_interfaces": 32,
        "network_cards": 32,
        "nvswitch": True,
        "nvme_gb": 30720,
        "vcpus": 192,
        "memory_gib": 2048,
        "usd_per_hour": 55.04,
        "price_date": "2026-09-25",
        "price_source": _POST_CUT,
        "price_status": "secondary",
    },
    "p5e.48xlarge": {
        "gpus": 8,
        "gpu": "H200-141GB",
        "efa_interfaces": 32,
        "network_cards": 32,
        "nvswitch": True,
        "nvme_gb": 30720,
        "vcpus": 192,
        "memory_gib": 2048,
        # Sold through Capacity Blocks and savings plans; the transcribed price lists carry no
        # on-demand rate for it, so automatic selection skips it (name it explicitly to use it).
        "usd_per_hour": None,
        "price_date": "2026-09-25",
        "price_source": "no on-demand rate found in " + _AWS_PRICE_LIST,
        "price_status": "unverified",
    },
    "p5en.48xlarge": {
        "gpus": 8,
        "gpu": "H200-141GB",
        "efa_interfaces": 16,
        "network_cards": 16,
        "nvswitch": True,
        "nvme_gb": 30720,
        "vcpus": 192,
        "memory_gib": 2048,
        "usd_per_hour": 63.296,
        "price_date": "2026-09-25",
        "price_source": _POST_CUT,
        "price_status": "secondary",
    },
    "g5.xlarge": {
        "gpus": 1,
        "gpu": "A10G",
        "efa_interfaces": 0,
        "network_cards": 1,
        "nvswitch": False,
        "nvme_gb": 250,
        "vcpus": 4,
        "memory_gib": 16,
        "usd_per_hour": 1.006,
        "price_date": "2026-08-17",
        "price_source": _AWS_PRICE_LIST,
        "price_status": "secondary",
    },
    "g5.12xlarge": {
        "gpus": 4,
        "gpu": "A10G",
        "efa_interfaces": 1,
        "network_cards": 1,
        "nvswitch": False,
        "nvme_gb": 3800,
        "vcpus": 48,
        "memory_gib": 192,
        "usd_per_hour": 5.672,
        "price_date": LOOKUP_DATE,
        "price_source": _AWS_PRICE_LIST + UNDATED,
        "price_status": "secondary",
    },
    "g5.48xlarge": {
        "gpus": 8,
        "gpu": "A10G",
        "efa_interfaces": 1,
        "network_cards": 1,
        "nvswitch": False,
        "nvme_gb": 7600,
        "vcpus": 192,
        "memory_gib": 768,
        "usd_per_hour": 16.288,
        "price_date": LOOKUP_DATE,
        "price_source": _AWS_PRICE_LIST + UNDATED,
        "price_status": "secondary",
    },
    "g6e.xlarge": {
        "gpus": 1,
        "gpu": "L40S",
        "efa_interfaces": 0,
        "network_cards": 1,
        "nvswitch": False,
        "nvme_gb": 250,
        "vcpus": 4,
        "memory_gib": 32,
        "usd_per_hour": 1.861,
        "price_date": "2026-08-17",
        "price_source": _AWS_PRICE_LIST,
        "price_status": "secondary",
    },
    "g6e.12xlarge": {
        "gpus": 4,
        "gpu": "L40S",
        "efa_interfaces": 1,
        "network_cards": 1,
        "nvswitch": False,
        "nvme_gb": 3800,
        "vcpus": 48,
        "memory_gib": 384,
        # Three sources give 10.49264; one gives 10.6032. The majority figure is kept.
        "usd_per_hour": 10.49264,
        "price_date": "2026-08-17",
        "price_source": _AWS_PRICE_LIST,
        "price_status": "secondary",
    },
    "g6e.48xlarge": {
        "gpus": 8,
        "gpu": "L40S",
        "efa_interfaces": 4,
        "network_cards": 4,
        "nvswitch": False,
        "nvme_gb": 7600,
        "vcpus": 192,
        "memory_gib": 1536,
        "usd_per_hour": 30.13118,
        "price_date": LOOKUP_DATE,
        "price_source": _AWS_PRICE_LIST + UNDATED,
        "price_status": "secondary",
    },
}


def instance(name: str) -> InstanceEntry:
    """The catalog entry of an instance type; LookupError naming the known types otherwise."""
    try:
        return INSTANCES[name]
    except KeyError:
        raise LookupError(
            f"unknown instance type {name!r}: the catalog (qwen_infra.catalogs.aws_instances) has "
            + ", ".join(sorted(INSTANCES))
        ) from None


def types_with_gpu(gpu: str) -> list[str]:
    """Instance types whose GPUs are the catalog GPU `gpu` (a catalogs.gpus.GPUS key)."""
    return sorted(name for name, entry in INSTANCES.items() if entry["gpu"] == gpu)
