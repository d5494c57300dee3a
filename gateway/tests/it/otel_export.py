"""Send spans, metrics and logs to a gateway with the official OpenTelemetry
Python SDK and its OTLP/HTTP (protobuf) exporters.

usage: otel_export.py BASE_URL TOKEN

Each exporter's export() result is checked: the script prints one line per
export and exits 1 if any of them did not succeed.
"""

import logging
import sys

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

base, token = sys.argv[1], sys.argv[2]
headers = {"Authorization": f"Bearer {token}"} if token else {}
resource = Resource.create({"service.name": "otel-py", "service.version": "1.2.3"})
results = []


def checked(cls):
    class Checked(cls):
        def export(self, *args, **kwargs):
            r = super().export(*args, **kwargs)
            results.append((cls.__name__, r))
            return r

    return Checked


# Spans, gzip-compressed: a server span with a child that failed.
tp = TracerProvider(resource=resource)
tp.add_span_processor(
    SimpleSpanProcessor(
        checked(OTLPSpanExporter)(
            endpoint=f"{base}/v1/traces",
            headers=headers,
            compression=Compression.Gzip,
            timeout=10,
        )
    )
)
tracer = tp.get_tracer("wraith.test", "0.1")
with tracer.start_as_current_span("checkout", kind=SpanKind.SERVER) as span:
    span.set_attribute("http.request.method", "POST")
    with tracer.start_as_current_span("db.query") as child:
        child.set_attribute("db.rows", 3)
        child.set_status(Status(StatusCode.ERROR, "timeout"))
tp.shutdown()

# Metrics: a counter and a histogram, collected once and exported.
reader = InMemoryMetricReader()
mp = MeterProvider(resource=resource, metric_readers=[reader])
meter = mp.get_meter("wraith.test", "0.1")
meter.create_counter("jobs_done", unit="1", description="Jobs finished").add(
    3, {"queue": "fast"}
)
meter.create_histogram("latency", unit="ms").record(12.5, {"route": "/"})
data = reader.get_metrics_data()
checked(OTLPMetricExporter)(
    endpoint=f"{base}/v1/metrics", headers=headers, timeout=10
).export(data)
mp.shutdown()

# Logs, through the standard logging module.
lp = LoggerProvider(resource=resource)
lp.add_log_record_processor(
    SimpleLogRecordProcessor(
        checked(OTLPLogExporter)(
            endpoint=f"{base}/v1/logs", headers=headers, timeout=10
        )
    )
)
log = logging.getLogger("wraith.test")
log.propagate = False
log.addHandler(LoggingHandler(level=logging.INFO, logger_provider=lp))
log.setLevel(logging.INFO)
log.warning("disk almost full", extra={"disk": "sda1"})
lp.shutdown()

ok = True
for name, r in results:
    print(f"{name}: {r.name}")
    ok = ok and r.name == "SUCCESS"
# One export per span (SimpleSpanProcessor), one for the metrics, one for the log.
sys.exit(0 if ok and len(results) == 4 else 1)
