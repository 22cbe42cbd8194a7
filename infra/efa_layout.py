"""The network interfaces of a GPU instance, generated from its catalog entry.

AWS's recommended layout for instance types with several network cards (EC2 User Guide, "Maximize
network bandwidth on Amazon EC2 instances with multiple network cards", efa-acc-inst-types):
  - the primary interface, network card 0 / device 0, is an ENA interface (type "interface"); an
    EFA-only interface cannot be primary;
  - network card 0 also takes an EFA-only interface at device 1;
  - every other network card takes one EFA-only interface at device 0.
So p5/p5e get 1 ENA + 32 EFA-only interfaces (cards 0-31), p5en 1 + 16 (cards 0-15), p4d/p4de 1 + 4
(cards 0-3). EFA-only interfaces carry no IP address: the host keeps a single IP on the primary ENA,
which avoids the routing and public-IP pitfalls of many IP interfaces. Attaching fewer EFA interfaces
than the type supports leaves fabric bandwidth unused (skypilot #8391, dstack #1781).
"""

from __future__ import annotations

from dataclasses import dataclass

from qwen_infra.catalogs.aws_instances import InstanceEntry

ENA = "interface"
EFA_ONLY = "efa-only"


@dataclass(frozen=True)
class NetworkInterface:
    network_card_index: int
    device_index: int
    interface_type: str


def interface_layout(entry: InstanceEntry) -> list[NetworkInterface]:
    """Every interface to attach at launch to an instance of this catalog entry."""
    efa, cards = entry["efa_interfaces"], entry["network_cards"]
    if efa > cards:
        raise ValueError(
            f"catalog entry asks for {efa} EFA interfaces on {cards} network cards (one per card)"
        )
    layout = [NetworkInterface(0, 0, ENA)]
    if efa:
        layout.append(NetworkInterface(0, 1, EFA_ONLY))
        layout += [NetworkInterface(card, 0, EFA_ONLY) for card in range(1, efa)]
    return layout
