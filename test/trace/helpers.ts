// Raw-client helpers for the message tracing tests: publish with headers, read trace events.
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
  return frames.map((f) => JSON.parse(f.payload!.toString("utf8")) as TraceEvent);
}

/** The header names and values of an HMSG's header block. */
export function headerLines(block: Buffer | undefined): string[] {
  if (block === undefined) return [];
  return block.toString("latin1").split("\r\n").slice(1).filter((l) => l !== "");
}

export const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
