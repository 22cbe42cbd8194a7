"""Run each example stack's program once under the mocks for the whole session (pyproject.toml puts
infra/ and this directory on the test path: the program imports its modules by bare name)."""

import warnings

import pytest
from pulumi_harness import EXAMPLE_STACKS, run_example

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
