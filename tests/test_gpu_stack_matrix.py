"""The GPU stack matrix (roles/nvidia_driver/vars/gpu_stack_matrix.yml) is internally consistent.

Each check is a pure function over a matrix dict, run on the real matrix and on broken copies so that
every check is shown to fail when it should.
"""

import copy
import re
from pathlib import Path

import pytest
import yaml

MATRIX_FILE = Path(__file__).resolve().parent.parent / "roles/nvidia_driver/vars/gpu_stack_matrix.yml"
OSES = {"ubuntu2204", "ubuntu2404", "debian12"}


def load_matrix() -> dict:
    return yaml.safe_load(MATRIX_FILE.read_text())["_nvidia_driver_matrix"]


def cuda_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def problems(matrix: dict) -> list[str]:
    """Every inconsistency in the matrix, as messages naming the stack."""
    found = []
    for name, stack in matrix["stacks"].items():
        branch = stack["driver_branch"]
        nccl = re.fullmatch(r"2\.\d+\.\d+-1\+cuda(\d+\.\d+)", stack["nccl_version"])
        if not nccl:
            found.append(f"{name}: NCCL version {stack['nccl_version']!r} is not 2.x.y-1+cudaA.B")
        elif nccl.group(1) != stack["cuda"]:
            found.append(
                f"{name}: NCCL is built for CUDA {nccl.group(1)}, the stack has CUDA {stack['cuda']}"
            )
        if not str(stack["driver_version"]).startswith(f"{branch}."):
            found.append(f"{name}: driver {stack['driver_version']} is not on branch {branch}")
        if branch not in matrix["branch_max_cuda"]:
            found.append(f"{name}: branch {branch} has no branch_max_cuda entry")
        elif cuda_tuple(stack["cuda"]) > cuda_tuple(matrix["branch_max_cuda"][branch]):
            found.append(f"{name}: CUDA {stack['cuda']} is newer than branch {branch} supports")
        if not stack["cuda_toolkit_version"].startswith(stack["cuda"] + "."):
            found.append(f"{name}: toolkit {stack['cuda_toolkit_version']} is not CUDA {stack['cuda']}")
        if set(stack["os"]) - set(matrix["os"]):
            found.append(f"{name}: unknown OS {sorted(set(stack['os']) - set(matrix['os']))}")
        if not name.startswith(f"r{branch}-cuda{stack['cuda']}"):
            found.append(f"{name}: the name does not say r{branch}-cuda{stack['cuda']}")
        found += dcgm_problems(matrix, name, stack)
    return found


def dcgm_problems(matrix: dict, name: str, stack: dict) -> list[str]:
    """The stack's DCGM against NVIDIA's pairing, its CUDA major and its driver branch.

    The same rules the dcgm_exporter role's input checks assert (tasks/validate_inputs.yml).
    """
    dcgm = re.fullmatch(r"1:(\d+\.\d+\.\d+)-1", str(stack["dcgm_version"]))
    exporter = re.fullmatch(r"(\d+\.\d+\.\d+)-1", str(stack["dcgm_exporter_version"]))
    if not dcgm:
        return [f"{name}: DCGM version {stack['dcgm_version']!r} is not 1:X.Y.Z-1"]
    if not exporter:
        return [f"{name}: exporter version {stack['dcgm_exporter_version']!r} is not X.Y.Z-1"]
    release = matrix["dcgm_releases"].get(dcgm.group(1))
    if release is None:
        return [f"{name}: DCGM {dcgm.group(1)} is not in dcgm_releases"]
    found = []
    if str(release["exporter"]) != exporter.group(1):
        found.append(
            f"{name}: exporter {exporter.group(1)} is not the one paired with DCGM {dcgm.group(1)}"
            f" ({release['exporter']})"
        )
    cuda_major = int(stack["cuda"].split(".")[0])
    if cuda_major not in release["cuda_majors"]:
        found.append(f"{name}: DCGM {dcgm.group(1)} has no package for CUDA {cuda_major}")
    if stack["driver_branch"] < release["min_branch"]:
        found.append(f"{name}: DCGM {dcgm.group(1)} needs driver branch {release['min_branch']} or newer")
    return found


def branch_refusal(matrix: dict, architecture: str, branch: int, kernel_modules: str) -> str | None:
    """Why `branch` with `kernel_modules` (open|proprietary) cannot drive `architecture`, or None.

    The same rules the nvidia_driver role's preflight asserts (tasks/preflight.yml).
    """
    rules = matrix["gpu_architectures"].get(architecture)
    if rules is None:
        return f"unknown GPU architecture {architecture}"
    if kernel_modules == "proprietary" and rules["open"] == "required":
        return f"{architecture} needs the open kernel modules"
    if kernel_modules == "open" and rules["open"] == "unsupported":
        return f"{architecture} has no open kernel module support"
    if branch < rules.get("min_branch", 0):
        return f"{architecture} needs branch {rules['min_branch']} or newer"
    if branch > rules.get("max_branch", 10_000):
        return f"branch {branch} dropped {architecture}"
    return None


def test_the_matrix_is_consistent():
    assert problems(load_matrix()) == []


def test_every_stack_covers_every_supported_os():
    matrix = load_matrix()
    assert set(matrix["os"]) == OSES
    for stack in matrix["stacks"].values():
        assert set(stack["os"]) == OSES


def mutated(stack: str, **changes) -> dict:
    matrix = copy.deepcopy(load_matrix())
    matrix["stacks"][stack].update(changes)
    return matrix


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"nccl_version": "2.26.2-1+cuda12.8"}, "NCCL is built for CUDA 12.8, the stack has CUDA 12.9"),
        ({"nccl_version": "2.27.7"}, "is not 2.x.y-1+cudaA.B"),
        ({"driver_version": "570.195.03"}, "is not on branch 580"),
        ({"cuda_toolkit_version": "12.8.1-1"}, "is not CUDA 12.9"),
        ({"os": ["debian12", "rhel9"]}, "unknown OS"),
    ],
)
def test_a_broken_stack_is_refused(changes, expected):
    found = problems(mutated("r580-cuda12.9", **changes))
    assert any(expected in message for message in found), found


@pytest.mark.parametrize(
    ("changes", "release", "expected"),
    [
        # 4.9.0 is paired with DCGM 4.7.0 (and renames the default metrics): not with 4.6.0.
        ({"dcgm_exporter_version": "4.9.0-1"}, None, "is not the one paired with DCGM 4.6.0"),
        ({"dcgm_version": "1:4.7.0-1"}, None, "DCGM 4.7.0 is not in dcgm_releases"),
        ({"dcgm_version": "4.6.0-1"}, None, "is not 1:X.Y.Z-1"),
        ({"dcgm_exporter_version": "4.6.0-4.8.3"}, None, "is not X.Y.Z-1"),
        ({}, {"cuda_majors": [11, 13]}, "has no package for CUDA 12"),
        ({}, {"min_branch": 590}, "needs driver branch 590 or newer"),
    ],
)
def test_a_bad_dcgm_pairing_is_refused(changes, release, expected):
    matrix = mutated("r580-cuda12.9", **changes)
    if release:
        matrix["dcgm_releases"]["4.6.0"].update(release)
    found = problems(matrix)
    assert any(expected in message for message in found), found


def test_a_cuda_newer_than_the_branch_is_refused():
    matrix = mutated(
        "r570-cuda12.8", cuda="12.9", cuda_toolkit_version="12.9.1-1", nccl_version="2.27.7-1+cuda12.9"
    )
    assert any("newer than branch 570 supports" in message for message in problems(matrix))


@pytest.mark.parametrize(
    ("architecture", "branch", "modules", "expected"),
    [
        ("Hopper", 580, "open", None),
        ("Hopper", 570, "proprietary", None),
        ("Blackwell", 580, "open", None),
        ("Blackwell", 580, "proprietary", "needs the open kernel modules"),
        ("Blackwell", 550, "open", "needs branch 570 or newer"),
        ("Volta", 580, "open", "no open kernel module support"),
        ("Volta", 590, "proprietary", "dropped Volta"),
        ("Kepler", 580, "proprietary", "unknown GPU architecture"),
    ],
)
def test_driver_branch_against_gpu_architecture(architecture, branch, modules, expected):
    refusal = branch_refusal(load_matrix(), architecture, branch, modules)
    assert refusal == expected or (expected and expected in (refusal or ""))


def test_the_fixture_gpus_have_rules():
    """The architectures nvidia-smi reported on the lent machines are known to the matrix."""
    fixtures = Path(__file__).parent / "fixtures" / "gpu"
    for xml in fixtures.glob("*/nvidia-smi-q.xml"):
        architecture = re.search(r"<product_architecture>(.+)</product_architecture>", xml.read_text()).group(
            1
        )
        assert architecture in load_matrix()["gpu_architectures"], xml


def test_the_default_stack_is_one_of_the_matrix_stacks():
    matrix = yaml.safe_load(MATRIX_FILE.read_text())["_nvidia_driver_matrix"]
    assert matrix["default_stack"] in matrix["stacks"]
