// Raw-client helpers for the message tracing tests: publish with headers, read trace events.
import { existsSync, readFileSync } from "node:fs";
import { expect } from "vitest";
import type { Frame, RawClient } from "../harness/raw.ts";

/** `HPUB subject [reply] <hdr> <total>` with the given header lines and payload. */
export function hpub(subject: string, headers: Record<string, string>, payload = "hi", reply?: string): string {
  const block = `NATS/1.0\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n`;
  const total = Buffer.byteLength(block) + Buffer.byteLength(payload);
  return `HPUB ${subject}${reply ? ` ${reply}` : ""} ${Buffer.byteLength(block)} ${total}\r\n${block}${payload}\r\n`;
}

export interface TraceEvent {
  server: { name: string; host: string; id: string; ver: string; jetstream: boolean; flags: number; seq: number; time: string; cluster?: string };
  request: { header?: Record<string, string[]>; msgsize?: number };
  hops?: number;
  events: Array<Record<string, unknown> & { type: string; ts: string }>;
}

/** The next `n` messages on the client, parsed as trace events (they arrive as MSG: no headers). */
export async function traceEvents(client: RawClient, n: number, timeoutMs = 10_000): Promise<TraceEvent[]> {
  const frames: Frame[] = await client.messages(n, timeoutMs);
  const events = frames.map((f) => JSON.parse(f.payload!.toString("utf8")) as TraceEvent);
  for (const event of events) expectNatsServerShape(event);
  return events;
}

/** The header names and values of an HMSG's header block. */
export function headerLines(block: Buffer | undefined): string[] {
  if (block === undefined) return [];
  return block.toString("latin1").split("\r\n").slice(1).filter((l) => l !== "");
}

export const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

// ---- nats-server's shapes, read from its source -----------------------------------------------

/** nats-server's source (read-only reference checkout); absent on machines without it (then the check is skipped). */
const MSGTRACE_GO = process.env.NATS_SERVER_SRC ? `${process.env.NATS_SERVER_SRC}/server/msgtrace.go` : "/work/ref/nats-server-main/server/msgtrace.go";

const STRUCT_OF_TYPE: Record<string, string> = { in: "MsgTraceIngress", sm: "MsgTraceSubjectMapping", se: "MsgTraceStreamExport", si: "MsgTraceServiceImport", js: "MsgTraceJetStream", eg: "MsgTraceEgress" };

let goFields: Map<string, string[]> | null | undefined;

/** The JSON field names of each struct in msgtrace.go, in declaration order (embedded MsgTraceBase expanded). */
function natsServerFields(): Map<string, string[]> | null {
  if (goFields !== undefined) return goFields;
  if (!existsSync(MSGTRACE_GO)) {
    console.warn(`${MSGTRACE_GO} not found: trace event shapes are not compared with nats-server's source`);
    return (goFields = null);
  }
  const source = readFileSync(MSGTRACE_GO, "utf8");
  const fields = new Map<string, string[]>();
  for (const m of source.matchAll(/type (\w+) struct \{([^}]*)\}/g)) {
    const names: string[] = [];
    for (const line of m[2]!.split("\n")) {
      if (/^\s*MsgTraceBase\s*$/.test(line)) names.push("type", "ts");
      const tag = /json:"([^",]+)/.exec(line);
      if (tag && tag[1] !== "-") names.push(tag[1]!);
    }
    fields.set(m[1]!, names);
  }
  return (goFields = fields);
}

/**
 * Every event's fields are nats-server's, in its order (natter leaves out only omitempty ones), and the
 * MsgTraceEvent's top level too. Skipped (with a warning) without nats-server's source.
 */
export function expectNatsServerShape(event: TraceEvent): void {
  const fields = natsServerFields();
  if (fields === null) return;
  const inOrder = (keys: string[], reference: string[]) => keys.filter((k) => reference.includes(k)).join(",") === keys.join(",") && keys.every((k, i) => i === 0 || reference.indexOf(keys[i - 1]!) < reference.indexOf(k));
  expect(inOrder(Object.keys(event), fields.get("MsgTraceEvent")!), `top level ${Object.keys(event)}`).toBe(true);
  expect(inOrder(Object.keys(event.request), fields.get("MsgTraceRequest")!), `request ${Object.keys(event.request)}`).toBe(true);
  for (const e of event.events) {
    const struct = STRUCT_OF_TYPE[e.type];
    expect(struct, `event type ${e.type}`).toBeDefined();
    expect(inOrder(Object.keys(e), fields.get(struct!)!), `${e.type}: ${Object.keys(e)} vs ${fields.get(struct!)}`).toBe(true);
  }
}
