"""Checks for monitoring artefacts: Prometheus rule files, Alertmanager configs, PromQL
and Grafana dashboards.

- `tools`: promtool / amtool wrappers returning the tool's own messages;
- `promql`: Grafana variables substituted, then PromQL parsed offline (promql-parser);
- `dashboard`: a dashboard's panels and queries, and the structural checks made on it;
- `alertmanager`: an Alertmanager config rewritten for a grading (webhooks, timings).

Nothing here is specific to one server: vLLM and Triton labs both use it.
"""
