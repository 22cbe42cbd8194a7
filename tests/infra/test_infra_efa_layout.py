"""The EFA layout generated per instance type matches AWS's documented layout: primary ENA at network
card 0 / device 0, an EFA-only at card 0 / device 1, then an EFA-only at device 0 of every other card."""

import pytest
from efa_layout import EFA_ONLY, ENA, NetworkInterface, interface_layout
from qwen_infra.catalogs import aws_instances


def slots(name):
    return [
        (i.network_card_index, i.device_index, i.interface_type)
        for i in interface_layout(aws_instances.INSTANCES[name])
    ]


# The layout depends only on the entry's EFA count, which test_infra_catalog pins per type: one type per
# count (p5e.48xlarge has p5.48xlarge's 32).
@pytest.mark.parametrize(("name", "cards"), [("p5.48xlarge", 32), ("p5en.48xlarge", 16)])
def test_p5_family_uses_every_network_card(name, cards):
    expected = [(0, 0, ENA), (0, 1, EFA_ONLY)] + [(card, 0, EFA_ONLY) for card in range(1, cards)]
    assert slots(name) == expected
    assert sum(kind == EFA_ONLY for *_, kind in expected) == cards


def test_four_card_types_get_four_efa():
    """p4de.24xlarge and g6e.48xlarge have the same four EFA on four cards (test_infra_catalog)."""
    assert slots("p4d.24xlarge") == [
        (0, 0, ENA),
        (0, 1, EFA_ONLY),
        (1, 0, EFA_ONLY),
        (2, 0, EFA_ONLY),
        (3, 0, EFA_ONLY),
    ]


def test_single_efa_types_keep_it_on_card_zero():
    assert slots("g6e.12xlarge") == [(0, 0, ENA), (0, 1, EFA_ONLY)]


def test_types_without_efa_get_only_the_primary_interface():
    assert interface_layout(aws_instances.INSTANCES["g6e.xlarge"]) == [NetworkInterface(0, 0, ENA)]


def test_more_efa_than_cards_is_refused():
    with pytest.raises(ValueError, match="one per card"):
        interface_layout({"efa_interfaces": 5, "network_cards": 4})
