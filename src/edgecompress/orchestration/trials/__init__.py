"""Trials and what they leave behind: one fingerprinted store (`store.py`) and one runner (`runner.py`) for
pipeline stages, sweep points, sensitivity trials and fit candidates."""
