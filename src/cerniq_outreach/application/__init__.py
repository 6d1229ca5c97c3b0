"""The application layer: use-case handlers, the ports they need, and the projections.

It imports the domain and nothing that does I/O; adapters implement its ports (`ports.py`) and
`bootstrap.py` wires them together.
"""
