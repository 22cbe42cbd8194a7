"""Byte units, stated once for every module of the package."""

GIB = 1 << 30
MIB = 1 << 20
