"""Grafana dashboards as code: one grafanalib module per dashboard, built into dashboards/json/."""
