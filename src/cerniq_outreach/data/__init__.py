"""Data shipped with the package (read through `importlib.resources`, never by file path).

- `replies.jsonl`: the reply corpus of the sandbox provider (`adapters/channels/reply_corpus.py`).
"""
