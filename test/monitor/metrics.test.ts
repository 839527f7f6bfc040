// /metrics: every line is valid Prometheus text exposition (0.0.4), and the counters agree with /varz
// after a known workload.
import { afterAll, beforeAll, expect, test } from "vitest";
import { get, getJson, startMonitored, type Monitored } from "./spawn.ts";
import { EXPECTED, runWorkload, type Workload } from "./workload.ts";

let natter: Monitored;
let load: Workload | undefined;

beforeAll(async () => {
  natter = await startMonitored("natter");
  load = await runWorkload(natter);
}, 60_000);

afterAll(async () => {
  await load?.close().catch(() => {});
  await natter?.stop();
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const HELP = new RegExp(`^# HELP (${NAME}) (.*)$`);
const TYPE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)(?: (-?\\d+))?$`);
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"\s*(,|$)/y;

function parseValue(text: string): number {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`bad value ${text}`);
  return Number(text);
}

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < text.length) {
    const at = LABEL.lastIndex;
    const m = LABEL.exec(text);
    if (!m) throw new Error(`bad labels at ${at}: ${text}`);
    labels[m[1]!] = m[2]!.replace(/\\n/g, "\n").replace(/\\"/g, '"').replace(/\\\\/g, "\\");
    if (m[3] === "") break;
  }
  return labels;
}

/** Parses the exposition strictly: throws on any line that is not HELP, TYPE or a sample of a typed metric. */
function parseExposition(text: string): { types: Map<string, string>; samples: Map<string, Sample> } {
  expect(text.endsWith("\n")).toBe(true);
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const samples = new Map<string, Sample>();
  for (const line of text.slice(0, -1).split("\n")) {
    let m: RegExpExecArray | null;
    if ((m = HELP.exec(line))) {
      expect(helps.has(m[1]!), `HELP twice for ${m[1]}`).toBe(false);
      helps.add(m[1]!);
    } else if ((m = TYPE.exec(line))) {
      expect(types.has(m[1]!), `TYPE twice for ${m[1]}`).toBe(false);
      types.set(m[1]!, m[2]!);
    } else if ((m = SAMPLE.exec(line))) {
      const name = m[1]!;
      // A summary's _sum and _count samples belong to the summary's family.
      const suffix = /_(sum|count)$/.exec(name);
      const base = suffix && types.get(name.slice(0, -suffix[0].length)) === "summary" ? name.slice(0, -suffix[0].length) : name;
      expect(types.has(base), `sample before TYPE: ${line}`).toBe(true);
      expect(helps.has(base), `sample without HELP: ${line}`).toBe(true);
      const labels = m[2] ? parseLabels(m[2]) : {};
      if (types.get(base) === "summary" && base === name) expect(labels.quantile, `summary sample without quantile: ${line}`).toMatch(/^0\.\d+$/);
      const key = base === name && !labels.quantile ? name : `${name}${m[2] ?? ""}`;
      samples.set(key, { name, labels, value: parseValue(m[3]!) });
    } else {
      throw new Error(`not a valid exposition line: ${JSON.stringify(line)}`);
    }
  }
  return { types, samples };
}

test("/metrics is valid Prometheus text and agrees with /varz", async () => {
  const res = await get(natter, "/metrics");
  expect(res.status).toBe(200);
  expect(res.contentType).toBe("text/plain; version=0.0.4; charset=utf-8");
  const { types, samples } = parseExposition(res.text);
  const varz = await getJson(natter, "/varz");

  for (const [name, type] of types) {
    // Counters end in _total; every declared metric has its sample.
    if (type === "counter") expect(name.endsWith("_total"), name).toBe(true);
    // A summary family may have no series yet (no service has been timed); the others always have one.
    if (type !== "summary") expect(samples.has(name), `no sample for ${name}`).toBe(true);
  }
  const value = (name: string) => {
    const s = samples.get(name);
    if (!s) throw new Error(`missing ${name}`);
    return s.value;
  };
  const expectedTypes: Record<string, string> = {
    natter_info: "gauge",
    natter_connections: "gauge",
    natter_subscriptions: "gauge",
    natter_connections_total: "counter",
    natter_messages_received_total: "counter",
    natter_messages_sent_total: "counter",
    natter_bytes_received_total: "counter",
    natter_bytes_sent_total: "counter",
    natter_slow_consumers_total: "counter",
    natter_stale_connections_total: "counter",
    natter_no_interest_messages_total: "counter",
    natter_publisher_stalls_total: "counter",
    process_resident_memory_bytes: "gauge",
    process_cpu_seconds_total: "counter",
  };
  for (const [name, type] of Object.entries(expectedTypes)) expect({ name, type: types.get(name) }).toEqual({ name, type });

  expect(value("natter_messages_received_total")).toBe(varz.in_msgs);
  expect(value("natter_messages_sent_total")).toBe(varz.out_msgs);
  expect(value("natter_bytes_received_total")).toBe(varz.in_bytes);
  expect(value("natter_bytes_sent_total")).toBe(varz.out_bytes);
  expect(value("natter_slow_consumers_total")).toBe(varz.slow_consumers);
  expect(value("natter_connections")).toBe(varz.connections);
  expect(value("natter_connections_total")).toBe(varz.total_connections);
  expect(value("natter_subscriptions")).toBe(varz.subscriptions);

  expect(value("natter_messages_received_total")).toBe(EXPECTED.inMsgs);
  expect(value("natter_messages_sent_total")).toBe(EXPECTED.outMsgs);
  expect(value("natter_connections")).toBe(EXPECTED.openConnections);
  expect(value("natter_connections_total")).toBe(EXPECTED.totalConnections);
  expect(value("natter_subscriptions")).toBe(EXPECTED.subscriptions);
  expect(value("natter_no_interest_messages_total")).toBe(2); // the two "nobody" messages
  expect(value("natter_stale_connections_total")).toBe(0);
  expect(value("natter_publisher_stalls_total")).toBe(0);

  const info = samples.get("natter_info")!;
  expect(info.value).toBe(1);
  expect(info.labels).toMatchObject({ server_id: varz.server_id, server_name: varz.server_name, version: "0.1.0" });
  expect(value("process_resident_memory_bytes")).toBeGreaterThan(1_000_000);
  expect(Number.isInteger(value("process_resident_memory_bytes"))).toBe(true);
  expect(value("process_cpu_seconds_total")).toBeGreaterThan(0);
});

test("counters only grow", async () => {
  const first = parseExposition((await get(natter, "/metrics")).text).samples;
  load!.beta.publish("foo.x", "again");
  await load!.beta.flush();
  await load!.alpha.flush();
  const second = parseExposition((await get(natter, "/metrics")).text).samples;
  expect(second.get("natter_messages_received_total")!.value).toBe(first.get("natter_messages_received_total")!.value + 1);
  expect(second.get("natter_messages_sent_total")!.value).toBe(first.get("natter_messages_sent_total")!.value + 2);
  expect(second.get("natter_bytes_received_total")!.value).toBe(first.get("natter_bytes_received_total")!.value + 5);
  expect(second.get("process_cpu_seconds_total")!.value).toBeGreaterThanOrEqual(first.get("process_cpu_seconds_total")!.value);
});
