// Core messaging through real clients (nats.js v2 and v3): subjects, queue groups, request-reply, headers,
// payload limits, ordering, many subscriptions, reconnecting.
import { beforeAll, describe, expect, test } from "vitest";
import { type Conn, dec, enc, type Msg, nextStatus, tcpClients } from "../harness/clients.ts";
import { connectReady, waitFor } from "../harness/raw.ts";
import { type RunningServer, startServer } from "../harness/server.ts";

let srv: RunningServer;
beforeAll(async () => {
  srv = await startServer();
});

/** Subscribes and records every message; `msgs` grows as they arrive. */
function collect(nc: Conn, subject: string, opts: { queue?: string; max?: number } = {}) {
  const msgs: Msg[] = [];
  const sub = nc.subscribe(subject, { ...opts, callback: (_err, m) => msgs.push(m) });
  return { sub, msgs, subjects: () => msgs.map((m) => m.subject) };
}

/** Everything published on `pubs` before this has been delivered to (and read by) `subs`. */
async function barrier(pubs: Conn[], subs: Conn[]): Promise<void> {
  await Promise.all(pubs.map((nc) => nc.flush()));
  await Promise.all(subs.map((nc) => nc.flush()));
}

describe.each(tcpClients)("$name", (client) => {
  test("wildcards: * matches one token, > one or more; what must not match does not", async () => {
    const nc = await client.connect(srv);
    const subs = {
      "foo.*": collect(nc, "foo.*"),
      "foo.>": collect(nc, "foo.>"),
      ">": collect(nc, ">"),
      "*.bar": collect(nc, "*.bar"),
      "foo.*.baz": collect(nc, "foo.*.baz"),
      "foo.bar": collect(nc, "foo.bar"),
      "*": collect(nc, "*"),
    };
    const published = ["foo", "foo.bar", "foo.bar.baz", "foo.x.baz", "x.bar", "foo.bar.baz.qux", "bar", "foo.bar.x"];
    for (const s of published) nc.publish(s, enc(s));
    await nc.flush();
    expect(subs["foo.*"].subjects()).toEqual(["foo.bar"]);
    expect(subs["foo.>"].subjects()).toEqual(["foo.bar", "foo.bar.baz", "foo.x.baz", "foo.bar.baz.qux", "foo.bar.x"]);
    expect(subs[">"].subjects()).toEqual(published);
    expect(subs["*.bar"].subjects()).toEqual(["foo.bar", "x.bar"]);
    expect(subs["foo.*.baz"].subjects()).toEqual(["foo.bar.baz", "foo.x.baz"]);
    expect(subs["foo.bar"].subjects()).toEqual(["foo.bar"]);
    expect(subs["*"].subjects()).toEqual(["foo", "bar"]);
    for (const s of Object.values(subs)) for (const m of s.msgs) expect(dec(m.data)).toBe(m.subject);
  });

  test("a message matching several subscriptions of one connection is delivered once per subscription", async () => {
    const nc = await client.connect(srv);
    const a = collect(nc, "dup.x");
    const b = collect(nc, "dup.*");
    const c = collect(nc, "dup.>");
    nc.publish("dup.x", enc("1"));
    await nc.flush();
    expect([a.msgs.length, b.msgs.length, c.msgs.length]).toEqual([1, 1, 1]);
  });

  test("queue groups: each message goes to exactly one member per group; plain subscribers get all", async () => {
    const N = 1000;
    const conns = await Promise.all(Array.from({ length: 9 }, () => client.connect(srv)));
    const g1 = conns.slice(0, 5).map((nc) => collect(nc, "work.item", { queue: "g1" }));
    const g2 = conns.slice(5, 7).map((nc) => collect(nc, "work.*", { queue: "g2" }));
    const plain = conns.slice(7, 9).map((nc) => collect(nc, "work.item"));
    await Promise.all(conns.map((nc) => nc.flush()));
    const pub = await client.connect(srv);
    for (let i = 0; i < N; i++) pub.publish("work.item", enc(String(i)));
    const total = (xs: { msgs: Msg[] }[]) => xs.reduce((n, x) => n + x.msgs.length, 0);
    await waitFor(() => total(g1) >= N && total(g2) >= N && plain.every((p) => p.msgs.length >= N), 20_000, "all deliveries");
    await barrier([pub], conns);
    expect(total(g1)).toBe(N);
    expect(total(g2)).toBe(N);
    for (const p of plain) expect(p.msgs.length).toBe(N);
    // Exactly once per group: every payload seen once across the members.
    for (const group of [g1, g2]) {
      const seen = group.flatMap((m) => m.msgs.map((x) => dec(x.data)));
      expect(new Set(seen).size).toBe(N);
    }
    // Spread across members (random or round robin; none is left out of 1000 messages).
    for (const m of [...g1, ...g2]) expect(m.msgs.length).toBeGreaterThan(0);
  });

  test("a queue group and a plain subscription on the same connection both get the message", async () => {
    const nc = await client.connect(srv);
    const q = collect(nc, "mix", { queue: "q" });
    const p = collect(nc, "mix");
    for (let i = 0; i < 10; i++) nc.publish("mix", enc(String(i)));
    await nc.flush();
    expect([q.msgs.length, p.msgs.length]).toEqual([10, 10]);
  });

  test("subscribe with max, and unsubscribe(max) after some deliveries", async () => {
    const nc = await client.connect(srv);
    const a = collect(nc, "lim.a", { max: 3 });
    const b = collect(nc, "lim.b");
    for (let i = 0; i < 2; i++) nc.publish("lim.b", enc(String(i)));
    await nc.flush();
    b.sub.unsubscribe(5);
    for (let i = 0; i < 10; i++) {
      nc.publish("lim.a", enc(String(i)));
      nc.publish("lim.b", enc(String(i)));
    }
    await nc.flush();
    expect(a.msgs.map((m) => dec(m.data))).toEqual(["0", "1", "2"]);
    expect(b.msgs.length).toBe(5);
    expect(a.sub.isClosed()).toBe(true);
    expect(b.sub.isClosed()).toBe(true);
  });

  test("request-reply through the client's shared (mux) inbox, and with a per-request inbox", async () => {
    const responder = await client.connect(srv);
    responder.subscribe("svc.upper", { callback: (_e, m) => m.respond(enc(dec(m.data).toUpperCase())) });
    await responder.flush();
    const nc = await client.connect(srv);
    const r = await nc.request("svc.upper", enc("hello"), { timeout: 5_000 });
    expect(dec(r.data)).toBe("HELLO");
    const r2 = await nc.request("svc.upper", enc("no mux"), { timeout: 5_000, noMux: true });
    expect(dec(r2.data)).toBe("NO MUX");
  });

  test("500 concurrent requests each get their own reply", async () => {
    const responders = await Promise.all([client.connect(srv), client.connect(srv)]);
    for (const r of responders) r.subscribe("svc.echo", { queue: "echo", callback: (_e, m) => m.respond(m.data) });
    await Promise.all(responders.map((r) => r.flush()));
    const nc = await client.connect(srv);
    const replies = await Promise.all(
      Array.from({ length: 500 }, (_, i) => nc.request("svc.echo", enc(`req-${i}`), { timeout: 15_000 }).then((m) => dec(m.data))),
    );
    expect(replies).toEqual(Array.from({ length: 500 }, (_, i) => `req-${i}`));
  });

  test("a request to a subject nobody listens on fails at once with the client's no-responders error", async () => {
    const nc = await client.connect(srv);
    const started = Date.now();
    const err = await nc.request("nobody.home", enc("?"), { timeout: 10_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(client.isNoResponders(err), `got ${String(err)}`).toBe(true);
    expect(Date.now() - started).toBeLessThan(5_000); // the 503, not the timeout
  });

  test("headers: status line, multi-value keys and values arrive as sent", async () => {
    const nc = await client.connect(srv);
    const got = collect(nc, "hdr.test");
    const h = client.headers(418, "I'm a teapot");
    h.append("X-Multi", "a");
    h.append("X-Multi", "b");
    h.set("Content-Type", "text/plain; charset=utf-8");
    h.set("X-Spaces", "  padded value ");
    nc.publish("hdr.test", enc("body"), { headers: h });
    const plain = client.headers();
    plain.set("Only", "one");
    nc.publish("hdr.test", enc(""), { headers: plain });
    await nc.flush();
    expect(got.msgs.length).toBe(2);
    const [m, m2] = got.msgs as [Msg, Msg];
    expect(m.headers!.code).toBe(418);
    expect(m.headers!.description).toBe("I'm a teapot");
    expect(m.headers!.values("X-Multi")).toEqual(["a", "b"]);
    expect(m.headers!.get("Content-Type")).toBe("text/plain; charset=utf-8");
    expect(m.headers!.get("X-Spaces")).toBe("padded value");
    expect(dec(m.data)).toBe("body");
    expect(m2.headers!.get("Only")).toBe("one");
    expect(m2.data.length).toBe(0);
  });

  test("headers on a request and on its reply", async () => {
    const responder = await client.connect(srv);
    responder.subscribe("svc.hdr", {
      callback: (_e, m) => {
        const h = client.headers();
        h.set("X-Echo", m.headers?.get("X-In") ?? "missing");
        m.respond(enc("ok"), { headers: h });
      },
    });
    await responder.flush();
    const nc = await client.connect(srv);
    const h = client.headers();
    h.set("X-In", "42");
    const r = await nc.request("svc.hdr", enc(""), { timeout: 5_000, headers: h });
    expect(r.headers?.get("X-Echo")).toBe("42");
  });

  test("noEcho: a connection does not receive its own messages; others do", async () => {
    const quiet = await client.connect(srv, { noEcho: true });
    const other = await client.connect(srv);
    const mine = collect(quiet, "echo.test");
    const theirs = collect(other, "echo.test");
    await Promise.all([quiet.flush(), other.flush()]);
    quiet.publish("echo.test", enc("from quiet"));
    other.publish("echo.test", enc("from other"));
    await barrier([quiet, other], [quiet, other]);
    expect(mine.msgs.map((m) => dec(m.data))).toEqual(["from other"]);
    expect(theirs.msgs.map((m) => dec(m.data)).sort()).toEqual(["from other", "from quiet"]);
  });

  test("payloads from 0 bytes to exactly max_payload arrive intact", async () => {
    const sub = await client.connect(srv);
    const pub = await client.connect(srv);
    const max = pub.info!.max_payload;
    expect(max).toBe(1024 * 1024);
    const got = collect(sub, "size.test");
    await sub.flush();
    const sizes = [0, 1, 2, 100, 4095, 4096, 4097, 65536, 500_000, max - 1, max];
    const payloads = sizes.map((n) => {
      const b = new Uint8Array(n);
      for (let i = 0; i < n; i++) b[i] = (i * 31 + n) & 0xff;
      return b;
    });
    for (const p of payloads) pub.publish("size.test", p);
    await waitFor(() => got.msgs.length >= sizes.length, 15_000, "all sizes");
    expect(got.msgs.map((m) => m.data.length)).toEqual(sizes);
    got.msgs.forEach((m, i) => expect(Buffer.from(m.data).equals(Buffer.from(payloads[i]!))).toBe(true));
  });

  test("one byte over max_payload: the client refuses it; the server and connection stay up", async () => {
    const nc = await client.connect(srv);
    const max = nc.info!.max_payload;
    expect(() => nc.publish("size.over", new Uint8Array(max + 1))).toThrow();
    const got = collect(nc, "size.after");
    nc.publish("size.after", enc("still here"));
    await nc.flush();
    expect(got.msgs.length).toBe(1);
  });

  test("binary payloads containing CRLF and protocol text arrive intact", async () => {
    const nc = await client.connect(srv);
    const got = collect(nc, "bin.test");
    const payloads = [
      enc("\r\n"),
      enc("MSG foo 1 2\r\nhi\r\n"),
      enc("PING\r\nPONG\r\n-ERR 'x'\r\n"),
      Uint8Array.from({ length: 512 }, (_, i) => i & 0xff),
      Uint8Array.from({ length: 2048 }, (_, i) => (i % 2 === 0 ? 13 : 10)),
    ];
    for (const p of payloads) nc.publish("bin.test", p);
    await nc.flush();
    expect(got.msgs.length).toBe(payloads.length);
    got.msgs.forEach((m, i) => expect(Buffer.from(m.data).equals(Buffer.from(payloads[i]!))).toBe(true));
  });

  test("10,000 messages from one publisher arrive in order", async () => {
    const N = 10_000;
    const sub = await client.connect(srv);
    const seqs: number[] = [];
    sub.subscribe("order.test", { callback: (_e, m) => seqs.push(new DataView(m.data.buffer, m.data.byteOffset).getUint32(0)) });
    await sub.flush();
    const pub = await client.connect(srv);
    for (let i = 0; i < N; i++) {
      const b = new Uint8Array(16);
      new DataView(b.buffer).setUint32(0, i);
      pub.publish("order.test", b);
    }
    await pub.flush();
    await waitFor(() => seqs.length >= N, 20_000, `${N} messages (got ${seqs.length})`);
    await sub.flush();
    expect(seqs.length).toBe(N);
    const outOfOrder = seqs.findIndex((s, i) => s !== i);
    expect(outOfOrder, `first out-of-order index ${outOfOrder}`).toBe(-1);
  });

  test("10,000 subscriptions on one connection all work", async () => {
    const N = 10_000;
    const sub = await client.connect(srv);
    const hits = new Uint16Array(N);
    let wrong = 0;
    for (let i = 0; i < N; i++) {
      sub.subscribe(`many.${i}`, {
        callback: (_e, m) => {
          if (m.subject !== `many.${i}` || dec(m.data) !== String(i)) wrong++;
          hits[i]!++;
        },
      });
    }
    await sub.flush();
    const pub = await client.connect(srv);
    for (let i = 0; i < N; i++) pub.publish(`many.${i}`, enc(String(i)));
    pub.publish("many.nobody", enc("x"));
    await pub.flush();
    await waitFor(() => hits.every((h) => h > 0), 20_000, "a message on every subscription");
    await sub.flush();
    expect(wrong).toBe(0);
    expect(hits.every((h) => h === 1)).toBe(true);
  });

  test("the client reconnects after a server restart on the same port and its subscription works again", async () => {
    const own = await startServer();
    const opts = { reconnect: true, maxReconnectAttempts: -1, reconnectTimeWait: 100, reconnectJitter: 0 };
    const nc = await client.connect(own, opts);
    const got = collect(nc, "re.test");
    nc.publish("re.test", enc("before"));
    await nc.flush();
    expect(got.msgs.map((m) => dec(m.data))).toEqual(["before"]);

    const reconnected = nextStatus(nc, "reconnect");
    await own.restart();
    await reconnected;
    await nc.flush(); // the client re-sent its subscriptions before this PING
    const other = await client.connect(own);
    other.publish("re.test", enc("after"));
    await other.flush();
    await waitFor(() => got.msgs.length >= 2, 10_000, "the message after the restart");
    expect(got.msgs.map((m) => dec(m.data))).toEqual(["before", "after"]);
  });
});

test("nats v2 and v3 clients talk to each other, headers included", async () => {
  const [a, b] = [tcpClients[0]!, tcpClients[1]!];
  const ncA = await a.connect(srv);
  const ncB = await b.connect(srv);
  ncB.subscribe("x.svc", {
    callback: (_e, m) => {
      const h = b.headers();
      h.set("From", "v3");
      m.respond(enc(`v3 got ${dec(m.data)} ${m.headers?.get("From")}`), { headers: h });
    },
  });
  await ncB.flush();
  const h = a.headers();
  h.set("From", "v2");
  const r = await ncA.request("x.svc", enc("hi"), { timeout: 5_000, headers: h });
  expect(dec(r.data)).toBe("v3 got hi v2");
  expect(r.headers?.get("From")).toBe("v3");
});

test("a raw client over max_payload is closed, clients on the server are not disturbed", async () => {
  const nc = await tcpClients[0]!.connect(srv);
  const got = collect(nc, "still.up");
  const raw = await connectReady(srv.port);
  raw.send(`PUB x ${1024 * 1024 + 1}\r\n`);
  await raw.expect("-ERR 'Maximum Payload Violation'\r\n");
  expect(await raw.waitClosed()).toBe(true);
  nc.publish("still.up", enc("ok"));
  await nc.flush();
  expect(got.msgs.length).toBe(1);
});
