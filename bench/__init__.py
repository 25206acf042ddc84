"""Benchmarks: the end-to-end pipeline against the raw model backend (`finpulse bench e2e`)."""
