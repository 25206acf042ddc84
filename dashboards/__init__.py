"""Grafana dashboards as code: generated JSON, provisioning files, checks and a PNG report."""
