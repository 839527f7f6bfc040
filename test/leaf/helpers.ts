// Clients and waits for the leafnode tests: real nats.js (v2) connections, closed when the test (or file)
// that opened them ends; "the link carries interest from A to B" checked by publishing until it arrives.
import { connect, type NatsConnection, type Msg, type Subscription } from "nats";
import { afterAll, onTestFinished } from "vitest";
import { NATS_SERVER, waitFor, type Proc } from "./spawn.ts";

export const HAS_NATS_SERVER = NATS_SERVER !== null;
if (!HAS_NATS_SERVER) {
  console.warn("nats-server is not installed: the leafnode tests against it are skipped (apt-get install -y nats-server)");
}

const open = new Set<NatsConnection>();
afterAll(async () => {
  await Promise.all([...open].map((nc) => nc.close().catch(() => {})));
  open.clear();
});

/** A client of `proc`; with `reconnect`, it follows the server across a restart. */
export async function client(proc: Proc, opts: { reconnect?: boolean; name?: string } = {}): Promise<NatsConnection> {
  const nc = await connect({
    servers: proc.url,
    name: opts.name,
    reconnect: opts.reconnect ?? false,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 100,
    timeout: 10_000,
  });
  open.add(nc);
  try {
    onTestFinished(async () => {
      open.delete(nc);
      if (!nc.isClosed()) await nc.close().catch(() => {});
    });
  } catch {
    // opened in a hook: the afterAll above closes it
  }
  return nc;
}

let unique = 0;
/** A subject no other test uses. */
export function subject(prefix: string): string {
  return `${prefix}.${process.pid}.${++unique}.${Math.random().toString(36).slice(2, 8)}`;
}

/** Messages a subscription received, kept in order. */
export interface Collected {
  readonly msgs: Msg[];
  readonly sub: Subscription;
  count(): number;
}

export function collect(nc: NatsConnection, subj: string, queue?: string): Collected {
  const msgs: Msg[] = [];
  const sub = nc.subscribe(subj, { queue, callback: (_err, m) => msgs.push(m) });
  return { msgs, sub, count: () => msgs.length };
}

/**
 * Waits until a message published by `from` on a fresh subject reaches a subscriber on `to`:
 * the link is up and carries interest in that direction. Publishes every few ms until then.
 */
export async function waitForFlow(from: NatsConnection, to: NatsConnection, what: string, timeoutMs = 15_000, detail?: () => string): Promise<void> {
  const probe = subject("probe");
  let got = false;
  const sub = to.subscribe(probe, { callback: () => (got = true) });
  await to.flush();
  try {
    await waitFor(what, async () => {
      if (!got) {
        from.publish(probe);
        await from.flush();
      }
      return got;
    }, timeoutMs, detail);
  } finally {
    sub.unsubscribe();
  }
}

/** Both directions. */
export async function waitForLink(a: NatsConnection, b: NatsConnection, detail?: () => string): Promise<void> {
  await waitForFlow(a, b, "messages to flow from one side of the link to the other", 15_000, detail);
  await waitForFlow(b, a, "messages to flow back over the link", 15_000, detail);
}

/** For failure messages: the last lines of each process's log. */
export function logs(...procs: Proc[]): () => string {
  return () => procs.map((p) => `==== ${p.name} (${p.kind})\n${p.log().split("\n").slice(-80).join("\n")}`).join("\n");
}
