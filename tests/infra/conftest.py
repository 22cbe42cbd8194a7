"""Put infra/ on sys.path (the Pulumi program imports its modules by bare name, as `pulumi up` runs it)
and run each example stack's program once under the mocks for the whole session."""

import sys
import warnings
from pathlib import Path

import pytest

INFRA = Path(__file__).resolve().parents[2] / "infra"
HERE = Path(__file__).resolve().parent
# infra/ for the program's modules; this directory for the harness and the policies.
for path in (INFRA, HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from pulumi_harness import EXAMPLE_STACKS, run_example  # noqa: E402

# pulumi-aws warns about a deprecated resource type of its own when that module first loads (the mocks
# load every ec2 type); load it here, quietly, so the warning does not land on our tests.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import pulumi_aws.ec2.encryption_control  # noqa: F401


@pytest.fixture(scope="session")
def example_runs():
    """stack name -> StackRun of that example stack's program under the mocks."""
    return {stack: run_example(stack) for stack in EXAMPLE_STACKS}


@pytest.fixture(params=EXAMPLE_STACKS)
def example(request, example_runs):
    """Each example stack's StackRun in turn."""
    return example_runs[request.param]
