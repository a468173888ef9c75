"""Uploaded datasets: their formats, read in memory, and where they are stored."""
