"""Channel adapters: TimelinesAI (WhatsApp), Instantly (cold email) and Resend (warm email).

Each live adapter speaks its provider's HTTP API through `http.ProviderHttp`, which holds the
behaviour they share (rate limiting, timeouts, retries, the error taxonomy, redacted logs).
"""
