"""Meshtastic radio mesh gateway: sans-IO codecs (framing, channel crypto, ATAK plugin packets) and thin transports.

docs/meshtastic.md describes what crosses between the mesh and the server, the budgets and the limits.
"""
