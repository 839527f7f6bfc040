// Shared bits of the JetStream integration tests: a JetStream-enabled server, v3 connections with the
// official @nats-io/jetstream managers, raw API requests, and deadline-bound waiting.
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connectV3 } from "../harness/clients.ts";
import { startServer, type RunningServer, type ServerOptions } from "../harness/server.ts";

export async function startJs(opts: ServerOptions = {}): Promise<RunningServer> {
  return startServer({ jetstream: true, ...opts });
}

export interface JsConn {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
}

export async function connectJs(server: RunningServer, opts: Record<string, unknown> = {}): Promise<JsConn> {
  const nc = (await connectV3(server, opts)) as unknown as NatsConnection;
  return { nc, js: jetstream(nc), jsm: await jetstreamManager(nc) };
}

/** A raw API request: the JSON answer as an object. */
export async function api(nc: NatsConnection, subject: string, body?: unknown): Promise<Record<string, any>> {
  const payload = body === undefined ? new Uint8Array() : new TextEncoder().encode(typeof body === "string" ? body : JSON.stringify(body));
  const m = await nc.request(subject, payload, { timeout: 5_000 });
  return JSON.parse(new TextDecoder().decode(m.data));
}

/** Polls `check` until it returns true, failing after `ms`. */
export async function until(check: () => boolean | Promise<boolean>, ms = 10_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export const enc = (s: string) => new TextEncoder().encode(s);
export const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** Collects the JSON bodies published on a subject (advisories, metrics) from now on. */
export function collectJson(nc: NatsConnection, subject: string): Record<string, any>[] {
  const out: Record<string, any>[] = [];
  nc.subscribe(subject, {
    callback: (_e, m) => {
      out.push(JSON.parse(dec(m.data)));
    },
  });
  return out;
}
