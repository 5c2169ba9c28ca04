"""Datasets: readers for standard on-disk formats and the resolution of where data lives."""
