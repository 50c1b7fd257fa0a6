"""Scheduled audits: job and settings files, fetching, the results store, the scheduler."""
