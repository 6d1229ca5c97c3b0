"""Quota guardian and rate limiter adapters: in-process (embedded) and Redis Lua."""
