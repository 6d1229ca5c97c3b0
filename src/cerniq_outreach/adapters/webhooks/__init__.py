"""Webhook adapters: signature and secret verification, and the inbox of identities seen."""
