// The same known state on any server: four named nats.js connections, subscriptions, a fixed set of
// messages, and one connection closed. Counts below are what /varz and /connz must then report.
import { connect, headers, type NatsConnection } from "nats";
import type { Monitored } from "./spawn.ts";

export interface Workload {
  alpha: NatsConnection;
  beta: NatsConnection;
  delta: NatsConnection;
  /** Closed after subscribing: /connz?state=closed shows it. */
  gammaName: string;
  close(): Promise<void>;
}

/** What the workload makes the server count (header bytes aside: one HPUB, compared with nats-server). */
export const EXPECTED = {
  openConnections: 3,
  totalConnections: 4,
  /** alpha 3 + beta 1 (gamma's 2 went with it). */
  subscriptions: 4,
  /** in_msgs: beta 10 + 3 + 1 + 2, delta 1. */
  inMsgs: 17,
  /** out_msgs: foo.x ×10 to alpha and beta, bar ×3 to the queue, foo.h and foo.big to alpha. */
  outMsgs: 25,
  /** Bytes without the HPUB (whose size includes its header block). */
  inBytesWithoutHpub: 10 * 5 + 3 * 7 + 2 * 4 + 1000,
  outBytesWithoutHpub: 20 * 5 + 3 * 7 + 1000,
  hpubPayload: 3,
  alpha: { inMsgs: 0, outMsgs: 15, subs: 3 },
  beta: { inMsgs: 16, outMsgs: 10, subs: 1 },
  delta: { inMsgs: 1, inBytes: 1000, outMsgs: 0, subs: 0 },
} as const;

export async function runWorkload(server: Monitored): Promise<Workload> {
  const opts = { servers: server.hostport, reconnect: false, timeout: 10_000 };
  const opened: NatsConnection[] = [];
  const open = async (name: string) => {
    const nc = await connect({ ...opts, name });
    opened.push(nc);
    return nc;
  };
  const close = async () => {
    await Promise.all(opened.map((nc) => (nc.isClosed() ? undefined : nc.close().catch(() => {}))));
  };
  try {
    // Connected one after another, so cids ascend alpha < beta < delta < gamma.
    const alpha = await open("alpha");
    const beta = await open("beta");
    const delta = await open("delta");
    const gamma = await open("gamma");

    alpha.subscribe("foo.>");
    alpha.subscribe("bar", { queue: "workers" });
    alpha.subscribe("baz", { max: 5 });
    beta.subscribe("foo.x");
    gamma.subscribe("zzz");
    gamma.subscribe("yyy", { queue: "g" });
    await Promise.all([alpha.flush(), beta.flush(), gamma.flush()]);

    for (let i = 0; i < 10; i++) beta.publish("foo.x", "hello");
    for (let i = 0; i < 3; i++) beta.publish("bar", "payload");
    const h = headers();
    h.set("X-Test", "1");
    beta.publish("foo.h", "hdr", { headers: h });
    for (let i = 0; i < 2; i++) beta.publish("nobody", "none");
    await beta.flush();
    delta.publish("foo.big", new Uint8Array(1000).fill(120));
    await delta.flush();
    await alpha.flush();

    await gamma.close();
    return { alpha, beta, delta, gammaName: "gamma", close };
  } catch (error) {
    await close();
    throw error;
  }
}
