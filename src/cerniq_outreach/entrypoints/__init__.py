"""Entrypoints: the ways into the system (command line, HTTP API, workers, scheduler).

They parse input, take what they need from the composition root and call the application;
they hold no business rules.
"""
