// /metrics: the server's counters in the Prometheus text exposition format (version 0.0.4).
// The format is a few lines per metric (`# HELP`, `# TYPE`, samples), so it is written here by
// hand rather than through a client library: no dependency, no registry to keep in sync, and the
// values are read straight from Server.stats at scrape time.
import type { Server } from "../server.ts";
import { COMPATIBLE_NATS_VERSION, NATTER_VERSION } from "../server.ts";
import { residentMemory } from "./varz.ts";
import type { LatencySummary } from "./latency.ts";
import { storageStates } from "../jetstream/jsz.ts";

export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

type MetricType = "counter" | "gauge" | "summary";

/** A label value: backslash, double quote and newline escaped. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

class Exposition {
  private readonly lines: string[] = [];

  metric(name: string, type: MetricType, help: string, value: number, labels?: Record<string, string>): void {
    this.lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
    let labelText = "";
    if (labels !== undefined) {
      labelText = `{${Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",")}}`;
    }
    this.lines.push(`${name}${labelText} ${formatValue(value)}`);
  }

  /** A summary from HDR histograms: quantiles, _sum and _count per series, in seconds. */
  summary(name: string, help: string, series: { labels: Record<string, string>; summary: LatencySummary }[]): void {
    this.lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} summary`);
    for (const { labels, summary } of series) {
      const base = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
      const quantiles: [string, number][] = [["0.5", summary.p50_us], ["0.9", summary.p90_us], ["0.99", summary.p99_us], ["0.999", summary.p999_us]];
      for (const [q, us] of quantiles) this.lines.push(`${name}{${[...base, `quantile="${q}"`].join(",")}} ${formatValue(us / 1e6)}`);
      const labelText = base.length > 0 ? `{${base.join(",")}}` : "";
      this.lines.push(`${name}_sum${labelText} ${formatValue((summary.mean_us * summary.count) / 1e6)}`);
      this.lines.push(`${name}_count${labelText} ${summary.count}`);
    }
  }

  /** One metric with a sample per label set (HELP and TYPE once); nothing when there are no samples. */
  samples(name: string, type: MetricType, help: string, samples: { labels: Record<string, string>; value: number }[]): void {
    if (samples.length === 0) return;
    this.lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
    for (const { labels, value } of samples) {
      this.lines.push(`${name}{${Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",")}} ${formatValue(value)}`);
    }
  }

  text(): string {
    return `${this.lines.join("\n")}\n`;
  }
}

/** The scrape: every value read now. */
export function metrics(server: Server): string {
  const s = server.stats;
  const e = new Exposition();
  e.metric("natter_info", "gauge", "Server identity; the value is always 1.", 1, {
    version: NATTER_VERSION,
    nats_version: COMPATIBLE_NATS_VERSION,
    server_id: server.serverId,
    server_name: server.serverName,
  });
  e.metric("natter_connections", "gauge", "Client connections currently open.", server.connections.size);
  e.metric("natter_subscriptions", "gauge", "Subscriptions currently registered.", server.sublist.count);
  e.metric("natter_connections_total", "counter", "Client connections accepted since start.", s.totalConnections);
  e.metric("natter_messages_received_total", "counter", "Messages received from clients.", s.inMsgs);
  e.metric("natter_messages_sent_total", "counter", "Messages delivered to clients.", s.outMsgs);
  e.metric("natter_bytes_received_total", "counter", "Message bytes (headers and payload) received from clients.", s.inBytes);
  e.metric("natter_bytes_sent_total", "counter", "Message bytes (headers and payload) delivered to clients.", s.outBytes);
  e.metric("natter_slow_consumers_total", "counter", "Clients closed as slow consumers.", s.slowConsumers);
  e.metric("natter_stale_connections_total", "counter", "Clients closed for not answering PINGs.", s.staleConnections);
  e.metric("natter_no_interest_messages_total", "counter", "Messages received that reached no subscriber.", s.noInterestMsgs);
  e.metric("natter_publisher_stalls_total", "counter", "Times a fast publisher was paused for a slow subscriber.", s.stalls);
  e.metric("natter_auth_failures_total", "counter", "Clients refused for bad or missing credentials (Authorization Violation).", s.authFailures);
  e.metric("natter_rate_limit_pauses_total", "counter", "Times a publisher's reads were paused for its user's publish rate limit.", s.rateLimitPauses);
  e.metric("natter_connections_throttled_total", "counter", "Connections refused by connection_rate_per_ip.", s.connectionsThrottled);
  const latency = server.latency.report();
  e.summary("natter_delivery_latency_seconds", "From reading a message to writing it to a subscriber's socket (sampled reads).", [
    { labels: {}, summary: latency.delivery },
  ]);
  e.summary(
    "natter_service_latency_seconds",
    "From a request reaching a responder to the first message on its reply subject (sampled requests).",
    Object.entries(latency.services).map(([subject, summary]) => ({ labels: { subject }, summary })),
  );
  e.samples("natter_jetstream_stream_write_failed", "gauge", "1 while a file stream cannot write (a full disk): its publishes are refused with 10023.",
    storageStates(server).map((s) => ({ labels: { account: s.account, stream: s.stream }, value: s.error === null ? 0 : 1 })));
  const cpu = process.cpuUsage();
  const mqtt = server.mqtt;
  if (mqtt !== null) {
    e.metric("natter_mqtt_connections", "gauge", "MQTT client connections currently open.", mqtt.connections.size);
    e.metric("natter_mqtt_connections_total", "counter", "MQTT client connections accepted since start.", mqtt.totalConnections);
    e.metric("natter_mqtt_sessions", "gauge", "MQTT sessions, connected or kept for a client that left.", mqtt.sessions.size);
    e.metric("natter_mqtt_retained_messages", "gauge", "Retained MQTT messages held.", mqtt.retainedCount);
    e.metric("natter_mqtt_pending_messages", "gauge", "QoS 1/2 messages in flight to MQTT clients or waiting for a slot.", mqtt.pendingCount);
    e.metric("natter_mqtt_publishes_received_total", "counter", "PUBLISH packets received from MQTT clients.", mqtt.stats.publishesIn);
    e.metric("natter_mqtt_publishes_sent_total", "counter", "PUBLISH packets sent to MQTT clients (redeliveries included).", mqtt.stats.publishesOut);
    e.metric("natter_mqtt_redeliveries_total", "counter", "QoS 1/2 messages sent again (DUP) after ack_wait or at reconnect.", mqtt.stats.redeliveries);
    e.metric("natter_mqtt_protocol_errors_total", "counter", "MQTT connections closed for a malformed packet or a protocol error.", mqtt.stats.protocolErrors);
  }
  e.metric("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", (cpu.user + cpu.system) / 1e6);
  e.metric("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", residentMemory());
  e.metric("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
    Math.round(performance.timeOrigin) / 1000);
  return e.text();
}
