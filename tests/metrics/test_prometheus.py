"""PrometheusExporter: the spec's series, parsed back with prometheus_client's own parser."""

from __future__ import annotations

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families

from fastapi_error_codes.metrics import ErrorMetricsCollector, MetricsConfig, PrometheusExporter


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_spec_series_with_exact_values(collector: ErrorMetricsCollector) -> None:
    for _ in range(10):
        collector.record(301, "UserNotFound", 404, "x")
    for _ in range(5):
        collector.record(500, "InternalError", 500, "x")
    collector.record(422, "ValidationFailed", 422, "x")
    text = PrometheusExporter(collector).generate_metrics()
    assert "# TYPE fastapi_errors_total counter" in text
    assert "# TYPE fastapi_errors_by_code gauge" in text
    samples = _samples(text)
    assert samples[("fastapi_errors_total", ())] == 16
    assert (
        samples[
            (
                "fastapi_errors_by_code",
                (("error_code", "301"), ("error_name", "UserNotFound"), ("status_code", "404")),
            )
        ]
        == 10
    )
    assert (
        samples[
            (
                "fastapi_errors_by_code",
                (("error_code", "500"), ("error_name", "InternalError"), ("status_code", "500")),
            )
        ]
        == 5
    )
    assert samples[("fastapi_errors_by_status", (("status_code", "404"),))] == 10
    assert samples[("fastapi_errors_by_status", (("status_code", "422"),))] == 1
    assert samples[("fastapi_errors_dropped_total", ())] == 0
    assert samples[("fastapi_errors_workers", ())] == 1
    assert samples[("fastapi_errors_buffered", ())] == 0
    assert samples[("fastapi_errors_flush_failures_total", ())] == 0
    assert samples[("fastapi_errors_sentry_skipped_total", ())] == 0
    assert samples[("fastapi_errors_refused_total", ())] == 0
    assert samples[("fastapi_errors_store_malformed", ())] == 0
    assert samples[("fastapi_errors_store_evictable", (("policy", ""),))] == 0
    assert not any("worker" in name and name != "fastapi_errors_workers" for name, _ in samples)
    assert ("fastapi_errors_flush_age_seconds", ()) in samples


def test_auth_refusals_are_a_fleet_wide_counter(collector: ErrorMetricsCollector) -> None:
    collector.note_refused(3)
    text = PrometheusExporter(collector).generate_metrics()
    assert "# TYPE fastapi_errors_refused_total counter" in text
    assert (
        "# HELP fastapi_errors_refused_total Requests to the library's own endpoints "
        "(/metrics, dashboard) refused by authentication (401/403), fleet-wide\n" in text
    )
    # next to the other self-health counter of the same kind
    assert text.index("fastapi_errors_sentry_skipped_total") < text.index(
        "fastapi_errors_refused_total"
    )
    assert _samples(text)[("fastapi_errors_refused_total", ())] == 3
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["fastapi_errors_refused"].type == "counter"


def test_openmetrics_when_the_scraper_asks(collector: ErrorMetricsCollector) -> None:
    collector.record(301, "UserNotFound", 404, "x")
    body, content_type = PrometheusExporter(collector).render(
        "application/openmetrics-text; version=1.0.0"
    )
    assert content_type.startswith("application/openmetrics-text")
    families = {f.name: f for f in parse_openmetrics(body.decode())}
    total = families["fastapi_errors"]
    assert total.type == "counter"
    values = {s.name: s.value for s in total.samples}
    assert values["fastapi_errors_total"] == 1
    assert "fastapi_errors_created" in values  # reset detection for rate()
    body, content_type = PrometheusExporter(collector).render("text/plain")
    assert content_type.startswith("text/plain; version=0.0.4")


def test_hostile_names_are_escaped_and_cut(collector: ErrorMetricsCollector) -> None:
    name = 'Bad"Name\\with\nnewline ü ' + "x" * 10_000
    collector.record(301, name, 404, "x")
    text = PrometheusExporter(collector).generate_metrics()
    samples = _samples(text)
    (labels,) = [k[1] for k in samples if k[0] == "fastapi_errors_by_code"]
    got = dict(labels)["error_name"]
    assert got == name[: collector.config.max_text_length]


def test_overflow_series_is_labelled_other() -> None:
    collector = ErrorMetricsCollector(MetricsConfig.testing(max_series=2, flush_interval_ms=60_000))
    try:
        for code in (1, 2, 3, 4):
            collector.record(code, f"E{code}", 400, "x")
        samples = _samples(PrometheusExporter(collector).generate_metrics())
        other = (("error_code", "other"), ("error_name", "other"), ("status_code", "other"))
        assert samples[("fastapi_errors_by_code", other)] == 2
        assert samples[("fastapi_errors_series_folded_total", ())] == 2
        assert samples[("fastapi_errors_total", ())] == 4
    finally:
        collector.close(timeout=1)


def _openmetrics_names(exporter: PrometheusExporter) -> set[str]:
    body, content_type = exporter.render("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    return {f.name for f in parse_openmetrics(body.decode())}


def test_namespace_prefixes_every_family_in_both_formats(collector: ErrorMetricsCollector) -> None:
    collector.record(301, "UserNotFound", 404, "x")
    default = _openmetrics_names(PrometheusExporter(collector))
    assert "fastapi_errors" in default
    exporter = PrometheusExporter(collector, namespace="shop_api")
    assert _openmetrics_names(exporter) == {"shop_api" + n.removeprefix("fastapi") for n in default}
    samples = _samples(exporter.generate_metrics())
    assert samples[("shop_api_errors_total", ())] == 1
    assert not any(name.startswith("fastapi") for name, _ in samples)
    # A colon (legal in names, meant for recording rules) would be rewritten by the
    # OpenMetrics encoder in sample names only: refused.
    with pytest.raises(ValueError, match="namespace"):
        PrometheusExporter(collector, namespace="shop:api")


def test_disabled_exporter_renders_an_empty_body(collector: ErrorMetricsCollector) -> None:
    collector.record(301, "UserNotFound", 404, "x")
    exporter = PrometheusExporter(collector, enabled=False)
    assert exporter.generate_metrics() == ""
    body, content_type = exporter.render(None)
    assert body == b""
    assert content_type == PrometheusExporter(collector).render(None)[1]  # the plain text type
    assert exporter.render("application/openmetrics-text") == (body, content_type)
