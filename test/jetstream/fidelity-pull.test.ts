// Pull request accounting and consumer state as nats-server reports them: a request's max_bytes charged per
// message (subject + ack reply + headers + payload), no_wait requests held while max_ack_pending is reached,
// and a filtered consumer's cursor (delivered.stream_seq), ack floor and num_pending.
import { AckPolicy, type JsMsg } from "@nats-io/jetstream";
import { createInbox, type Msg } from "@nats-io/nats-core";
import { describe, expect, test } from "vitest";
import { api, connectJs, dec, enc, startJs, until, type JsConn } from "./helpers.ts";

type Server = Awaited<ReturnType<typeof startJs>>;

async function withStream(subjects = ["q.>"], extra: Record<string, unknown> = {}): Promise<JsConn & { server: Server }> {
  const server = await startJs();
  const c = await connectJs(server);
  await c.jsm.streams.add({ name: "Q", subjects, ...extra });
  return { ...c, server };
}

/** A raw pull request whose replies are collected in `got` until stop(). */
interface Pull {
  got: Msg[];
  /** Waits until `check(got)` holds (fails after `ms`). */
  wait(check: (got: Msg[]) => boolean, ms?: number): Promise<Msg[]>;
  stop(): void;
}

function pull(c: JsConn, consumer: string, body: unknown): Pull {
  const inbox = createInbox();
  const got: Msg[] = [];
  const sub = c.nc.subscribe(inbox, {
    callback: (_err, m) => {
      got.push(m);
    },
  });
  c.nc.publish(`$JS.API.CONSUMER.MSG.NEXT.Q.${consumer}`, enc(JSON.stringify(body)), { reply: inbox });
  return {
    got,
    async wait(check, ms = 5_000) {
      await until(() => check(got), ms, `pull replies (${got.length} so far)`);
      return got;
    },
    stop: () => sub.unsubscribe(),
  };
}

const code = (m: Msg): number => m.headers?.code ?? 0;
const isMessage = (m: Msg): boolean => code(m) === 0 && m.reply !== undefined && m.reply.startsWith("$JS.ACK.");
/** What nats-server charges a delivered message against max_bytes: subject, ack reply, headers and payload. */
const charged = (m: Msg): number =>
  Buffer.byteLength(m.subject) + Buffer.byteLength(m.reply ?? "") + (m.headers ? Buffer.byteLength(m.headers.toString()) : 0) + m.data.length;

const statusAt = (n: number) => (g: Msg[]) => g.some((m) => code(m) >= n);
const messages = (n: number) => (g: Msg[]) => g.filter(isMessage).length >= n;

describe("pull request max_bytes", () => {
  test("batch 10, max_bytes 150: messages charged with their ack reply, then 409 Message Size Exceeds MaxBytes", async () => {
    const c = await withStream();
    for (let i = 1; i <= 10; i++) await c.js.publish(`q.${i}`, enc(`m${i}`));
    await c.jsm.consumers.add("Q", { durable_name: "w", ack_policy: AckPolicy.Explicit });
    const p = pull(c, "w", { batch: 10, max_bytes: 150, expires: 2_000_000_000 });
    const got = await p.wait(statusAt(400));
    p.stop();
    const msgs = got.filter(isMessage);
    // q.N (3) + $JS.ACK.Q.w.1.N.N.<19-digit ns>.<pending> (39) + mN (2) = 44 bytes each: 3 fit in 150.
    expect(msgs.map((m) => m.subject)).toEqual(["q.1", "q.2", "q.3"]);
    expect(msgs.map(charged)).toEqual([44, 44, 44]);
    const last = got.at(-1)!;
    expect(code(last)).toBe(409);
    expect(last.headers!.description).toBe("Message Size Exceeds MaxBytes");
    expect(last.headers!.get("Nats-Pending-Messages")).toBe("7");
    expect(last.headers!.get("Nats-Pending-Bytes")).toBe(String(150 - 3 * 44));
    // The message that did not fit is the next one delivered.
    const next = pull(c, "w", { batch: 1, expires: 2_000_000_000 });
    expect((await next.wait(messages(1))).filter(isMessage).map((m) => m.subject)).toEqual(["q.4"]);
    next.stop();
  });

  test("headers and a longer subject are charged too; a budget used up exactly ends the request", async () => {
    const c = await withStream();
    const h = (await import("@nats-io/nats-core")).headers();
    h.set("X-Tag", "abc");
    for (let i = 1; i <= 4; i++) await c.js.publish(`q.long.subject.${i}`, enc("payload"), { headers: h });
    await c.jsm.consumers.add("Q", { durable_name: "h", ack_policy: AckPolicy.Explicit });
    // Learn one message's charge from a first pull, then ask for exactly two of them.
    const first = pull(c, "h", { batch: 1, expires: 2_000_000_000 });
    const one = (await first.wait(messages(1))).filter(isMessage)[0]!;
    first.stop();
    const size = charged(one);
    expect(size).toBe("q.long.subject.1".length + "$JS.ACK.Q.h.1.1.1.".length + 19 + ".3".length + one.headers!.toString().length + "payload".length);
    const exact = pull(c, "h", { batch: 10, max_bytes: 2 * size, expires: 5_000_000_000 });
    await exact.wait(messages(2));
    // Still listening on the first request's inbox: the next request gets the 4th message, so the first one
    // had ended (a request still waiting would have taken it), and it ended without a 409 or 408.
    const after = pull(c, "h", { batch: 1, expires: 2_000_000_000 });
    expect((await after.wait(messages(1))).filter(isMessage).map((m) => m.subject)).toEqual(["q.long.subject.4"]);
    after.stop();
    exact.stop();
    expect(exact.got.map((m) => (isMessage(m) ? m.subject : code(m)))).toEqual(["q.long.subject.2", "q.long.subject.3"]);
  });
});

/** Acks every message delivered so far that was not acked yet (by its reply subject). */
async function ackAll(c: JsConn, got: Msg[], acked: Set<string>): Promise<void> {
  for (const m of got) {
    if (isMessage(m) && !acked.has(m.reply!)) {
      acked.add(m.reply!);
      c.nc.publish(m.reply!, enc("+ACK"));
    }
  }
  await c.nc.flush();
}

describe("no_wait pull requests and max_ack_pending", () => {
  test("a no_wait request is held while max_ack_pending is reached and served as acks make room, then 408 at the end", async () => {
    const c = await withStream();
    for (let i = 1; i <= 30; i++) await c.js.publish(`q.${i}`, enc(`m${i}`));
    await c.jsm.consumers.add("Q", { durable_name: "m", ack_policy: AckPolicy.Explicit, max_ack_pending: 10 });
    const p = pull(c, "m", { batch: 40, no_wait: true });
    await p.wait(messages(10));
    // Stalled, not ended: the request is still waiting.
    let info = await c.jsm.consumers.info("Q", "m");
    expect(info).toMatchObject({ num_waiting: 1, num_ack_pending: 10, num_pending: 20 });
    expect(p.got.filter((m) => !isMessage(m))).toEqual([]);
    const acked = new Set<string>();
    await ackAll(c, p.got, acked);
    await p.wait(messages(20));
    await ackAll(c, p.got, acked);
    await p.wait(messages(30));
    // The stream is read to its end while 10 are unacknowledged: still stalled, still waiting.
    info = await c.jsm.consumers.info("Q", "m");
    expect(info).toMatchObject({ num_waiting: 1, num_ack_pending: 10, num_pending: 0 });
    await ackAll(c, p.got, acked);
    const got = await p.wait(statusAt(400));
    p.stop();
    expect(got.filter(isMessage).map((m) => dec(m.data))).toEqual(Array.from({ length: 30 }, (_, i) => `m${i + 1}`));
    const end = got.at(-1)!;
    expect([code(end), end.headers!.description]).toEqual([408, "Request Timeout"]);
    expect(end.headers!.get("Nats-Pending-Messages")).toBe("10");
    expect(got.filter((m) => !isMessage(m))).toHaveLength(1);
  });

  test("no_wait: 404 when nothing is there, 408 Requests Pending when waiting requests already want all there is", async () => {
    const c = await withStream();
    await c.jsm.consumers.add("Q", { durable_name: "r", ack_policy: AckPolicy.Explicit, max_ack_pending: 5 });
    const empty = pull(c, "r", { batch: 5, no_wait: true });
    const none = (await empty.wait(statusAt(400))).at(-1)!;
    empty.stop();
    expect([code(none), none.headers!.description]).toEqual([404, "No Messages"]);
    for (let i = 1; i <= 20; i++) await c.js.publish(`q.${i}`, enc(`m${i}`));
    // A long request takes 5 and stalls wanting 95 more; 15 are left, fewer than it wants.
    const long = pull(c, "r", { batch: 100, expires: 10_000_000_000 });
    await long.wait(messages(5));
    const late = pull(c, "r", { batch: 1, no_wait: true });
    const answer = (await late.wait(statusAt(400))).at(-1)!;
    late.stop();
    long.stop();
    expect([code(answer), answer.headers!.description]).toEqual([408, "Requests Pending"]);
  });
});
