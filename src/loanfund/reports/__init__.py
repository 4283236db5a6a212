"""Oversight reports, and the kit that exports any of them as JSON, CSV or Excel (`export`)."""
