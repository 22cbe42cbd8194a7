"""Loopback stand-ins for model hubs (see hub.py)."""
