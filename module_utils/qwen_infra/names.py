"""Suggesting the name somebody meant: the nearest known name to a misspelt one."""

from __future__ import annotations

from collections.abc import Iterable


def nearest_name(name: str, known: Iterable[str]) -> str | None:
    """The known name closest to a misspelt one, if one is within two edits (or a third of its length,
    for long names)."""
    best, best_distance = None, max(2, len(name) // 3) + 1
    for candidate in known:
        distance = _edit_distance(name, candidate)
        if distance < best_distance:
            best, best_distance = candidate, distance
    return best


def _edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def unknown_variables(
    names: Iterable[str], options_by_role: dict[str, Iterable[str]]
) -> list[dict[str, str | None]]:
    """Variables named like a role's (its name and "_" as prefix) that its argument specs do not know,
    each with the nearest known option. Internal names (leading "_") are the roles' own business."""
    found = []
    for name in sorted(names):
        for role, options in options_by_role.items():
            known = set(options)
            if name.startswith(f"{role}_") and name not in known:
                found.append({"variable": name, "role": role, "nearest": nearest_name(name, known)})
    return found
