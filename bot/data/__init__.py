"""Data in and out: CSV/JSONL import and export, the demo org."""
