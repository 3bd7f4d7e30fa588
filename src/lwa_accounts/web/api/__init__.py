"""The JSON API for devices, under /api/v1."""
