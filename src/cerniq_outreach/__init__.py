"""Cerniq Outreach: the multi-channel B2B outreach engine."""

__version__ = "0.1.0"
