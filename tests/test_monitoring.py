"""labgrade.monitoring: promtool/amtool wrappers (the real tools, no server), PromQL with
Grafana variables, dashboard structure, an Alertmanager config prepared for grading."""

from __future__ import annotations

import json

import pytest
import yaml

from labgrade.monitoring import alertmanager, dashboard, promql, tools
from labgrade.runtime import prometheus

RULES = """\
groups:
- name: demo
  rules:
  - record: job:requests:rate30s
    expr: sum by (job) (rate(requests_total[30s]))
  - alert: TooManyRequests
    expr: job:requests:rate30s > 1
    for: 10s
    labels: {severity: page}
"""

RULE_TEST = """\
rule_files: [rules.yml]
evaluation_interval: 5s
tests:
- interval: 5s
  input_series:
  - series: 'requests_total{job="api"}'
    values: '0+10x20'
  alert_rule_test:
  - eval_time: 5s
    alertname: TooManyRequests
    exp_alerts: []
  - eval_time: 60s
    alertname: TooManyRequests
    exp_alerts:
    - exp_labels: {severity: page, job: api}
"""


def test_check_rules_accepts_a_valid_file(tmp_path):
    (tmp_path / "rules.yml").write_text(RULES)
    result = tools.check_rules(tmp_path / "rules.yml")
    assert result.ok, result.output
    assert "SUCCESS" in result.output


def test_check_rules_returns_promtools_message_with_the_line(tmp_path):
    (tmp_path / "rules.yml").write_text(RULES.replace("[30s]))", "[30s])"))
    result = tools.check_rules(tmp_path / "rules.yml")
    assert not result.ok
    # promtool's own text: file, line:column, the rule, the parser's complaint
    assert "rules.yml: 5:11" in result.output and "unclosed left parenthesis" in result.output


def test_check_rules_yaml_error_names_the_line(tmp_path):
    (tmp_path / "rules.yml").write_text(RULES.replace("    expr: job", "   expr: job"))
    result = tools.check_rules(tmp_path / "rules.yml")
    assert not result.ok and "line" in result.output and "yaml" in result.output


def test_promtool_unit_tests_pass_and_fail(tmp_path):
    (tmp_path / "rules.yml").write_text(RULES)
    (tmp_path / "t.yml").write_text(RULE_TEST)
    assert tools.test_rules(tmp_path / "t.yml").ok
    (tmp_path / "rules.yml").write_text(RULES.replace("> 1", "> 100"))
    result = tools.test_rules(tmp_path / "t.yml")
    assert not result.ok and "TooManyRequests" in result.output


def test_amtool_check_config_reports_the_tools_message(tmp_path):
    (tmp_path / "am.yml").write_text("route:\n  receiver: x\nreceivers:\n- name: y\n")
    result = tools.check_alertmanager_config(tmp_path / "am.yml")
    assert not result.ok and 'undefined receiver "x"' in result.output


def test_missing_tool_says_how_to_install(monkeypatch):
    monkeypatch.setattr(prometheus.shutil, "which", lambda name: None)
    monkeypatch.setattr(prometheus, "FALLBACK_DIRS", ())
    with pytest.raises(prometheus.MonitoringToolMissing, match="scripts/setup-system.sh"):
        prometheus.tool_path("amtool")


@pytest.mark.parametrize("expr, want", [
    ("rate(x[$__rate_interval])", "rate(x[30s])"),
    ("rate(x[${__interval}])", "rate(x[5s])"),
    ("increase(x[$__range])", "increase(x[5m])"),
    ("x / $__range_s", "x / 300"),
    ('x{m=~"$model"}', 'x{m=~".*"}'),
    ('x{m=~"${model:regex}"}', 'x{m=~".*"}'),
    ('x{m=~"[[model]]"}', 'x{m=~".*"}'),
])
def test_grafana_variables_are_substituted(expr, want):
    assert promql.substitute(expr, {"model": ".*"}) == want


def test_parse_lists_metric_names_and_reports_parser_errors():
    parsed = promql.parse("histogram_quantile(0.95, sum by (le) "
                          "(rate(vllm:time_to_first_token_seconds_bucket[$__rate_interval])))")
    assert parsed.metrics == ("vllm:time_to_first_token_seconds_bucket",)
    with pytest.raises(promql.QueryError, match="unclosed left parenthesis"):
        promql.parse("sum(rate(x[$__rate_interval])")
    with pytest.raises(promql.QueryError):
        promql.parse("rate(x[$unknown])")  # an unknown variable is left for the parser


def _panel(pid, title, expr="up", **extra):
    return {"id": pid, "type": "timeseries", "title": title,
            "gridPos": {"h": 8, "w": 12, "x": 0, "y": 0},
            "targets": [{"refId": "A", "expr": expr}], **extra}


def test_dashboard_structure_and_queries(tmp_path):
    board = {"title": "t", "schemaVersion": 39,
             "templating": {"list": [{"name": "model", "current": {"value": "$__all"}}]},
             "panels": [_panel(1, "a"),
                        {"id": 2, "type": "row", "title": "r", "collapsed": True,
                         "gridPos": {"h": 1, "w": 24, "x": 0, "y": 8},
                         "panels": [_panel(3, "nested", "rate(x[$__rate_interval])")]}]}
    (tmp_path / "d.json").write_text(json.dumps({"dashboard": board}))
    loaded = dashboard.load(tmp_path / "d.json")
    assert dashboard.structure_problems(loaded) == []
    assert [(q.panel, q.expr) for q in dashboard.queries(loaded)] == [
        ("a", "up"), ("nested", "rate(x[$__rate_interval])")]
    assert dashboard.template_values(loaded) == {"model": ".*"}


def test_dashboard_structure_problems_name_the_panel():
    bad = {"title": "t", "schemaVersion": "39",
           "panels": [_panel(1, "a"), _panel(1, "b", gridPos={"h": 8, "w": "12", "x": 0, "y": 0}),
                      _panel(4, "c", gridPos={"h": 8, "w": 12, "x": 18, "y": 0},
                             fieldConfig={"defaults": {"unit": 5}}),
                      {**_panel(5, "d"), "targets": [{"refId": "A"}, {"refId": "A", "expr": "up"}]}]}
    problems = "\n".join(dashboard.structure_problems(bad))
    assert "schemaVersion" in problems
    assert "panel 'b': `id` 1 is also the id of panel 'a'" in problems
    assert "panel 'b': gridPos.w must be integers" in problems
    assert "panel 'c': gridPos x + w = 30" in problems
    assert "panel 'c': fieldConfig.defaults.unit must be a string" in problems
    assert "panel 'd': targets[0].expr" in problems and "refId 'A' is used twice" in problems


def test_dashboard_json_error_names_line(tmp_path):
    (tmp_path / "d.json").write_text('{"title": "t",\n "panels": [}\n')
    with pytest.raises(dashboard.DashboardError, match="line 2"):
        dashboard.load(tmp_path / "d.json")


def test_alertmanager_config_points_webhooks_at_the_sink():
    text = """\
route:
  receiver: default
  group_wait: 30s
  routes:
  - matchers: ['severity="page"']
    receiver: pager
    group_interval: 10m
receivers:
- name: default
  webhook_configs: [{url: 'http://example.invalid/a'}]
- name: pager
  webhook_configs: [{url: 'http://example.invalid/b'}]
"""
    out = yaml.safe_load(alertmanager.for_grading(text, "http://127.0.0.1:9/"))
    assert out["receivers"][0]["webhook_configs"][0]["url"] == "http://127.0.0.1:9/default"
    assert out["receivers"][1]["webhook_configs"][0]["url"] == "http://127.0.0.1:9/pager"
    assert out["route"]["group_wait"] == "1s" and out["route"]["group_interval"] == "2s"
    child = out["route"]["routes"][0]
    assert child["group_interval"] == "2s" and "group_wait" not in child
    with pytest.raises(alertmanager.ConfigError):
        alertmanager.for_grading("- a list", "http://x")
