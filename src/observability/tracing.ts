/**
 * Tracing: OpenTelemetry spans for HTTP requests (http/server.ts) and batch commits
 * (storage/batch-writer.ts), exported in batches as OTLP/HTTP JSON to `<endpoint>/v1/traces`.
 *
 * Off unless config.tracing.otlpEndpoint is set: then the tracer is the API's no-op, with no
 * provider, processor or exporter behind it, and the server adds no tracing hooks at all.
 * Nothing is registered globally (no global provider, propagator or context manager): the
 * tracer is handed to the parts that use it, so two apps in one process (tests) stay apart.
 * The SDK still reads the standard OTEL_* tuning variables (OTEL_TRACES_SAMPLER,
 * OTEL_BSP_*, OTEL_EXPORTER_OTLP_HEADERS) itself, as any OpenTelemetry SDK does.
 *
 * Lifecycle: app.ts shuts the provider down last, after the writer's final commits, so their
 * spans are exported too. An export that fails is logged once per run of failures.
 */
import type { IncomingHttpHeaders } from 'node:http';
import {
  type Context,
  defaultTextMapGetter,
  isSpanContextValid,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { ExportResultCode, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { within } from '../deadlines.ts';

export interface Tracing {
  readonly enabled: boolean;
  readonly tracer: Tracer;
  /** The context a request continues: the trace of its W3C `traceparent` header, if valid. */
  extract(headers: IncomingHttpHeaders): Context;
  /** Exports the spans still buffered, then stops. */
  shutdown(): Promise<void>;
}

/** A provider without a delegate never gets one: its tracer is the API's no-op, whatever is registered globally. */
export const noopTracer: Tracer = new ProxyTracerProvider().getTracer('wavehouse');

const disabled: Tracing = {
  enabled: false,
  tracer: noopTracer,
  extract: () => ROOT_CONTEXT,
  shutdown: async () => undefined,
};

/** Log bindings that tie a line to its span; none for the no-op tracer's spans. */
export function traceFields(span: Span | null): { traceId?: string; spanId?: string } {
  const context = span?.spanContext();
  return context && isSpanContextValid(context) ? { traceId: context.traceId, spanId: context.spanId } : {};
}

/**
 * How long shutdown waits for the last spans to be exported. The exporter's own timeout is
 * 10 s; with the collector gone, shutdown would wait all of it, past the few seconds serve.ts
 * leaves for closing after the drain.
 */
const defaultShutdownMs = 2_000;

export function createTracing(config: Config['tracing'], log: Logger, { shutdownMs = defaultShutdownMs } = {}): Tracing {
  if (config.otlpEndpoint === null) return disabled;
  // OTEL_EXPORTER_OTLP_ENDPOINT is a base URL; each signal goes to its own path under it (OTLP spec).
  const url = new URL('v1/traces', config.otlpEndpoint.endsWith('/') ? config.otlpEndpoint : `${config.otlpEndpoint}/`).href;
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: config.serviceName }),
    spanProcessors: [new BatchSpanProcessor(reportingFailures(new OTLPTraceExporter({ url }), log))],
  });
  const propagator = new W3CTraceContextPropagator();
  log.info({ url, serviceName: config.serviceName }, 'exporting traces');
  return {
    enabled: true,
    tracer: provider.getTracer('wavehouse'),
    extract: (headers) => propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter),
    async shutdown() {
      const outcome = await within(
        provider.shutdown().then(() => 'done' as const),
        shutdownMs,
        () => 'late' as const,
      );
      if (outcome === 'late') log.warn({ waitedMs: shutdownMs }, 'span export unfinished at shutdown; the spans not yet sent are dropped');
    },
  };
}

/** The SDK reports export failures only to the global diag logger; this says them in the app's log, once per outage. */
function reportingFailures(exporter: SpanExporter, log: Logger): SpanExporter {
  let failing = false;
  return {
    export(spans, done) {
      exporter.export(spans, (result) => {
        if (result.code !== ExportResultCode.SUCCESS && !failing)
          log.warn({ err: result.error, spans: spans.length }, 'span export failed; spans are dropped until it works');
        else if (result.code === ExportResultCode.SUCCESS && failing) log.info('span export works again');
        failing = result.code !== ExportResultCode.SUCCESS;
        done(result);
      });
    },
    shutdown: () => exporter.shutdown(),
    forceFlush: () => exporter.forceFlush?.() ?? Promise.resolve(),
  };
}
