// Real NATS clients connected to a test server: nats.js v2 (`nats`), v3 (`@nats-io/transport-node`) and
// nats.ws. Each connection is closed when the test that opened it finishes (or, when opened in a hook,
// when the file is done), even if the test fails.
import * as v2 from "nats";
import * as v3 from "@nats-io/transport-node";
import * as natsWs from "nats.ws";
import { afterAll, onTestFinished } from "vitest";
import type { RunningServer } from "./server.ts";

/** The connection shape tests use; v2, v3 and nats.ws connections all provide it at run time. */
export type Conn = v2.NatsConnection;
export type Msg = v2.Msg;
export type MsgHdrs = v2.MsgHdrs;

const open = new Set<{ close(): Promise<void>; isClosed(): boolean }>();
afterAll(async () => {
  await Promise.all([...open].map((nc) => nc.close().catch(() => {})));
  open.clear();
});

function track<T extends { close(): Promise<void>; isClosed(): boolean }>(nc: T): T {
  open.add(nc);
  try {
    onTestFinished(async () => {
      open.delete(nc);
      if (!nc.isClosed()) await nc.close().catch(() => {});
    });
  } catch {
    // opened outside a test: the afterAll above closes it
  }
  return nc;
}

/** Options for every test connection: fail fast, and do not reconnect unless a test asks for it. */
const base = { reconnect: false, timeout: 10_000 } as const;

export async function connectV2(server: RunningServer, opts: v2.ConnectionOptions = {}): Promise<Conn> {
  return track(await v2.connect({ servers: server.url, ...base, ...opts }));
}

export async function connectV3(server: RunningServer, opts: v3.NodeConnectionOptions = {}): Promise<Conn> {
  const nc = await v3.connect({ servers: server.hostport, ...base, ...opts });
  return track(nc as unknown as Conn);
}

export async function connectWs(server: RunningServer, opts: natsWs.ConnectionOptions = {}): Promise<Conn> {
  if (!server.wsUrl) throw new Error("server was started without ws: true");
  const nc = await natsWs.connect({ servers: server.wsUrl, ...base, ...opts });
  return track(nc as unknown as Conn);
}

export interface ClientFlavour {
  name: string;
  connect(server: RunningServer, opts?: Record<string, unknown>): Promise<Conn>;
  headers(code?: number, description?: string): MsgHdrs;
  /** Whether a request failure is the client's "no responders" error. */
  isNoResponders(err: unknown): boolean;
}

/** The two TCP clients, for tests that must pass with both. */
export const tcpClients: ClientFlavour[] = [
  {
    name: "nats v2",
    connect: (s, o) => connectV2(s, o as v2.ConnectionOptions),
    headers: (code, description) => v2.headers(code, description),
    isNoResponders: (err) => (err as v2.NatsError)?.code === v2.ErrorCode.NoResponders,
  },
  {
    name: "@nats-io/transport-node v3",
    connect: (s, o) => connectV3(s, o as v3.NodeConnectionOptions),
    headers: (code, description) => v3.headers(code, description) as unknown as MsgHdrs,
    isNoResponders: (err) =>
      err instanceof v3.NoRespondersError ||
      (err instanceof v3.RequestError && err.isNoResponders()),
  },
];

export const wsHeaders = (code?: number, description?: string): MsgHdrs => natsWs.headers(code, description) as unknown as MsgHdrs;

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

/** Resolves on the connection's next status event of `type` (e.g. "reconnect", "disconnect"). */
export function nextStatus(nc: Conn, type: string): Promise<void> {
  return new Promise((resolve) => {
    (async () => {
      for await (const s of nc.status()) {
        if (String(s.type) === type) {
          resolve();
          return;
        }
      }
    })().catch(() => {});
  });
}
