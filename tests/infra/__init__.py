"""Tests of the Pulumi program (infra/). A package so that its conftest does not shadow tests/conftest.py
under the module name `conftest` (tests import REPO from there)."""
