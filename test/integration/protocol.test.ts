// The client protocol on the wire, byte for byte, as nats-server 2.9.10 speaks it: raw sockets only.
import { beforeAll, describe, expect, test } from "vitest";
import { connectRaw, connectReady, type RawClient, waitFor } from "../harness/raw.ts";
import { type RunningServer, startServer } from "../harness/server.ts";

const err = (text: string) => `-ERR '${text}'\r\n`;

/** The next frame must be exactly `-ERR '<text>'`, then the server must close the connection. */
async function expectErrThenClose(c: RawClient, text: string): Promise<void> {
  await c.expect(err(text));
  expect(await c.waitClosed(5_000), "connection should be closed after the -ERR").toBe(true);
}

/** The server must close the connection without sending anything (no -ERR). */
async function expectSilentClose(c: RawClient): Promise<void> {
  expect(await c.waitClosed(5_000), "connection should be closed").toBe(true);
  expect(c.frames.map((f) => f.raw)).toEqual([]);
}

/** The connection must still be open and working: PING answered by PONG with nothing before it. */
async function expectOpen(c: RawClient): Promise<void> {
  expect(await c.flush()).toEqual([]);
  expect(c.closed).toBe(false);
}

/** A frame's raw bytes, for readable comparisons. */
const raws = (fs: { raw: string }[]) => fs.map((f) => f.raw);

let srv: RunningServer; // defaults
let small: RunningServer; // max_payload 1024, max_control_line 512

beforeAll(async () => {
  [srv, small] = await Promise.all([startServer(), startServer({ maxPayload: 1024, maxControlLine: 512 })]);
});

describe("INFO", () => {
  test("is the first line, `INFO {json} \\r\\n`, with the fields clients read", async () => {
    const c = await connectRaw(srv.port);
    const first = c.history[0]!;
    expect(first.op).toBe("INFO");
    expect(first.raw).toMatch(/^INFO \{.*\} \r\n$/);
    const info = c.info!;
    expect(info.server_id).toEqual(expect.any(String));
    expect((info.server_id as string).length).toBeGreaterThan(0);
    expect(info.server_name).toEqual(expect.any(String));
    expect(info.version).toMatch(/^\d+\.\d+\.\d+/);
    const [maj, min] = (info.version as string).split(".").map(Number);
    expect(maj! > 2 || (maj === 2 && min! >= 9), `version ${info.version} should be ≥ 2.9`).toBe(true);
    expect(info.proto).toBe(1);
    expect(info.headers).toBe(true);
    expect(info.max_payload).toBe(1024 * 1024);
    expect(info.client_id).toEqual(expect.any(Number));
    expect(info.client_ip).toBe("127.0.0.1");
    expect(info.host).toBe("127.0.0.1");
    expect(info.port).toBe(srv.port);
    expect(info.auth_required ?? false).toBe(false);
    expect(info.tls_required ?? false).toBe(false);
  });

  test("client_id differs per connection; max_payload follows the configuration", async () => {
    const [a, b] = await Promise.all([connectRaw(srv.port), connectRaw(srv.port)]);
    expect(a.info!.client_id).not.toBe(b.info!.client_id);
    const s = await connectRaw(small.port);
    expect(s.info!.max_payload).toBe(1024);
  });
});

describe("CONNECT and PING", () => {
  test("a bare CONNECT {} is verbose and pedantic by default", async () => {
    const c = await connectRaw(srv.port);
    c.send("CONNECT {}\r\n");
    await c.expect("+OK\r\n");
    c.send("PUB foo.* 0\r\n\r\n");
    expect(raws(await c.flush())).toEqual([err("Invalid Publish Subject"), "+OK\r\n"]);
  });

  test("CONNECT with verbose:false sends nothing back", async () => {
    const c = await connectRaw(srv.port, { connect: { verbose: false } });
    expect(raws(await c.flush())).toEqual([]);
  });

  test("PING before CONNECT is answered", async () => {
    const c = await connectRaw(srv.port);
    c.send("PING\r\n");
    await c.expect("PONG\r\n");
    expect(c.closed).toBe(false);
  });

  test("protocol 0 and 1 are accepted", async () => {
    for (const protocol of [0, 1]) {
      const c = await connectRaw(srv.port, { connect: { verbose: false, protocol } });
      await expectOpen(c);
    }
  });

  test("protocol outside 0..1: -ERR 'invalid client protocol', closed", async () => {
    const c = await connectRaw(srv.port, { connect: { verbose: false, protocol: 2 } });
    await expectErrThenClose(c, "invalid client protocol");
  });

  test("no_responders without headers: -ERR 'no responders requires headers support', closed", async () => {
    const c = await connectRaw(srv.port, { connect: { verbose: false, no_responders: true } });
    await expectErrThenClose(c, "no responders requires headers support");
  });

  test("no_responders with headers is accepted", async () => {
    const c = await connectRaw(srv.port, { connect: { verbose: false, no_responders: true, headers: true } });
    await expectOpen(c);
  });

  test("malformed CONNECT JSON: closed without -ERR", async () => {
    const c = await connectRaw(srv.port);
    c.send('CONNECT {"verbose":false\r\n');
    await expectSilentClose(c);
  });
});

describe("parsing", () => {
  test("ops are case-insensitive", async () => {
    const c = await connectRaw(srv.port);
    c.send('connect {"verbose":false,"headers":true}\r\nsub foo 1\r\npub foo 2\r\nhi\r\nPuB foo 2\r\nho\r\n');
    c.send("hpub foo 12 14\r\nNATS/1.0\r\n\r\nyo\r\nUnSuB 1\r\npub foo 2\r\nno\r\npInG\r\n");
    const frames = await c.readUntil((f) => f.op === "PONG");
    expect(raws(frames)).toEqual(["MSG foo 1 2\r\nhi\r\n", "MSG foo 1 2\r\nho\r\n", "HMSG foo 1 12 14\r\nNATS/1.0\r\n\r\nyo\r\n", "PONG\r\n"]);
  });

  test("arguments may be separated by tabs and several spaces", async () => {
    const c = await connectReady(srv.port);
    c.send("SUB\tfoo \t 1\r\nSUB  foo  q   2\r\nPUB \t foo\t\treply   2\r\nhi\r\n");
    const frames = await c.flush();
    expect(raws(frames).sort()).toEqual(["MSG foo 1 reply 2\r\nhi\r\n", "MSG foo 2 reply 2\r\nhi\r\n"]);
  });

  test("a bare \\n ends a control line", async () => {
    const c = await connectRaw(srv.port);
    c.send('CONNECT {"verbose":false}\nSUB foo 1\nPUB foo 2\nhi\r\nPING\n');
    expect(raws(await c.readUntil((f) => f.op === "PONG"))).toEqual(["MSG foo 1 2\r\nhi\r\n", "PONG\r\n"]);
  });

  test("a payload must be followed by \\r\\n: a bare \\n is 'Unknown Protocol Operation'", async () => {
    const c = await connectReady(srv.port);
    c.send("PUB foo 2\r\nhi\nPING\r\n");
    await expectErrThenClose(c, "Unknown Protocol Operation");
  });

  test("ops split across many small writes are reassembled", async () => {
    const c = await connectReady(srv.port, { headers: true });
    const wire = "SUB split.> 7\r\nPUB split.a re 5\r\nhello\r\nHPUB split.b 18 20\r\nNATS/1.0\r\nA: b\r\n\r\nok\r\n";
    for (let i = 0; i < wire.length; i += 3) {
      c.send(wire.slice(i, i + 3));
      await new Promise((r) => setImmediate(r)); // yield so the pieces go out as separate writes
    }
    expect(raws(await c.flush())).toEqual(["MSG split.a 7 re 5\r\nhello\r\n", "HMSG split.b 7 18 20\r\nNATS/1.0\r\nA: b\r\n\r\nok\r\n"]);
  });

  // natter takes a PUB to a subject no one wants as soon as its control line is read and passes over its
  // payload as it arrives, never copying it (src/protocol/parser.ts, takePubUnread): the same ops result.
  test("a large PUB no one wants, arriving over many writes, is passed over and the ops after it are parsed", async () => {
    const [pub, sub] = await Promise.all([connectReady(srv.port), connectReady(srv.port)]);
    sub.send("SUB wanted 1\r\n");
    await sub.flush();
    const size = 300_000;
    pub.send(`PUB nobody.wants.it ${size}\r\n`);
    for (let sent = 0; sent < size; sent += 30_000) {
      pub.send(Buffer.alloc(30_000, 97));
      await new Promise((r) => setImmediate(r)); // separate writes
    }
    pub.send("\r\nPUB wanted 2\r\nhi\r\n");
    expect(raws(await pub.flush())).toEqual([]);
    expect(raws(await sub.messages(1))).toEqual(["MSG wanted 1 2\r\nhi\r\n"]);
  });

  test("a large PUB no one wants must still end in \\r\\n: 'Unknown Protocol Operation'", async () => {
    const c = await connectReady(srv.port);
    c.send("PUB nobody.wants.it 100000\r\n");
    for (let sent = 0; sent < 100_000; sent += 25_000) {
      c.send(Buffer.alloc(25_000, 97));
      await new Promise((r) => setImmediate(r));
    }
    c.send("XX\r\nPING\r\n");
    await expectErrThenClose(c, "Unknown Protocol Operation");
  });

  // natter frees each large read's memory when its callback returns (src/transport/read-memory.ts): what a
  // delivery or an op split across reads needs must have been copied by then.
  test("messages written in large bursts, many split across reads, arrive intact", async () => {
    const [pub, sub] = await Promise.all([connectReady(srv.port), connectReady(srv.port)]);
    sub.send("SUB burst 1\r\n");
    await sub.flush();
    const payloads = Array.from({ length: 40 }, (_, i) => Buffer.alloc(50_000 + i * 997, 33 + (i % 90)));
    pub.send(Buffer.concat(payloads.flatMap((p) => [Buffer.from(`PUB burst ${p.length}\r\n`), p, Buffer.from("\r\n")])));
    await pub.flush();
    const got = await sub.messages(payloads.length, 10_000);
    expect(got.map((m, i) => m.payload!.equals(payloads[i]!))).toEqual(payloads.map(() => true));
  });

  test("payloads are opaque bytes: CRLF, protocol text and all 256 byte values pass through", async () => {
    const c = await connectReady(srv.port);
    const bytes = Buffer.concat([Buffer.from("\r\nMSG foo 1 2\r\nPING\r\n\r\n"), Buffer.from(Array.from({ length: 256 }, (_, i) => i))]);
    c.send("SUB bin 1\r\n");
    c.send(Buffer.concat([Buffer.from(`PUB bin ${bytes.length}\r\n`), bytes, Buffer.from("\r\n")]));
    const [m] = await c.messages(1);
    expect(m!.line).toBe(`MSG bin 1 ${bytes.length}`);
    expect(m!.payload!.equals(bytes)).toBe(true);
  });

  test("empty payload", async () => {
    const c = await connectReady(srv.port);
    c.send("SUB foo 1\r\nPUB foo 0\r\n\r\n");
    expect(raws(await c.flush())).toEqual(["MSG foo 1 0\r\n\r\n"]);
  });

  test("HPUB headers are passed through byte for byte", async () => {
    const c = await connectReady(srv.port, { headers: true });
    const hdr = "NATS/1.0 418 I'm a teapot\r\nX-Multi: a\r\nx-multi: b\r\nWeird-Spacing:   v  \r\nEmpty:\r\n\r\n";
    const payload = "body";
    c.send("SUB h 1\r\n");
    c.send(`HPUB h reply.to ${hdr.length} ${hdr.length + payload.length}\r\n${hdr}${payload}\r\n`);
    expect(raws(await c.flush())).toEqual([`HMSG h 1 reply.to ${hdr.length} ${hdr.length + payload.length}\r\n${hdr}${payload}\r\n`]);
  });

  test("HPUB header bytes are not validated, only counted", async () => {
    const c = await connectReady(srv.port, { headers: true });
    c.send("SUB h 1\r\nHPUB h 2 4\r\nxxhi\r\n");
    expect(raws(await c.flush())).toEqual(["HMSG h 1 2 4\r\nxxhi\r\n"]);
  });

  test("subjects are bytes: UTF-8 and punctuation other than . * > are literal", async () => {
    const c = await connectReady(srv.port);
    const subject = Buffer.from("ä.ö.$x-y_z#+!", "utf8").toString("latin1");
    c.send(`SUB ${subject} 1\r\nPUB ${subject} 2\r\nhi\r\n`);
    expect(raws(await c.flush())).toEqual([`MSG ${subject} 1 2\r\nhi\r\n`]);
  });
});

describe("-ERR and closing", () => {
  test.each([
    ["garbage", "FOO bar\r\n"],
    ["an empty line", "\r\n"],
    ["a client sending MSG", "MSG foo 1 2\r\nhi\r\n"],
    ["a payload longer than its byte count", "PUB foo 2\r\nhiX\r\n"],
    ["a payload shorter than its byte count", "PUB foo 3\r\nhi\r\n\r\n"],
  ])("%s: -ERR 'Unknown Protocol Operation', closed", async (_name, wire) => {
    const c = await connectReady(srv.port);
    c.send(wire);
    await expectErrThenClose(c, "Unknown Protocol Operation");
  });

  test("Maximum Payload Violation is decided on the control line, before the payload", async () => {
    const c = await connectReady(small.port);
    c.send("PUB foo 1025\r\n"); // no payload follows
    await expectErrThenClose(c, "Maximum Payload Violation");
  });

  test("HPUB: the total size counts against max_payload", async () => {
    const c = await connectReady(small.port, { headers: true });
    c.send("HPUB foo 12 1025\r\n");
    await expectErrThenClose(c, "Maximum Payload Violation");
  });

  test("a payload of exactly max_payload is allowed (PUB and HPUB)", async () => {
    const c = await connectReady(small.port, { headers: true });
    const body = "x".repeat(1024);
    const hdr = "NATS/1.0\r\n\r\n";
    c.send(`SUB foo 1\r\nPUB foo 1024\r\n${body}\r\nHPUB foo ${hdr.length} 1024\r\n${hdr}${body.slice(hdr.length)}\r\n`);
    const frames = await c.flush();
    expect(frames.map((f) => [f.op, f.line])).toEqual([
      ["MSG", "MSG foo 1 1024"],
      ["HMSG", `HMSG foo 1 ${hdr.length} 1024`],
    ]);
  });

  test("the default max control line is 4096 bytes of arguments", async () => {
    const ok = await connectReady(srv.port);
    ok.send(`SUB ${"a".repeat(4094)} 1\r\n`); // arguments: exactly 4096 bytes
    await expectOpen(ok);
    const bad = await connectReady(srv.port);
    bad.send(`SUB ${"a".repeat(4095)} 1\r\n`); // 4097
    await expectErrThenClose(bad, "maximum control line exceeded");
  });

  test("max_control_line applies to every op, also without a line end yet", async () => {
    const ok = await connectReady(small.port);
    ok.send(`PUB ${"a".repeat(510)} 0\r\n\r\n`); // 512
    await expectOpen(ok);
    const pub = await connectReady(small.port);
    pub.send(`PUB ${"a".repeat(511)} 0\r\n\r\n`); // 513
    await expectErrThenClose(pub, "maximum control line exceeded");
    const partial = await connectReady(small.port);
    partial.send(`SUB ${"a".repeat(2000)}`); // no CRLF: still too long
    await expectErrThenClose(partial, "maximum control line exceeded");
    const conn = await connectRaw(small.port);
    conn.send(`CONNECT {"verbose":false,"name":"${"n".repeat(600)}"}\r\n`);
    await expectErrThenClose(conn, "maximum control line exceeded");
  });

  test.each([
    ["PUB without a size", "PUB foo\r\n"],
    ["PUB with a negative size", "PUB foo -1\r\n"],
    ["PUB with a non-numeric size", "PUB foo 2x\r\nhi\r\n"],
    ["PUB with too many arguments", "PUB foo bar baz 2\r\nhi\r\n"],
    ["SUB without a sid", "SUB foo\r\n"],
    ["SUB with too many arguments", "SUB foo q x 1\r\n"],
  ])("%s: closed without -ERR", async (_name, wire) => {
    const c = await connectReady(srv.port);
    c.send(wire);
    await expectSilentClose(c);
  });

  test("HPUB whose header size exceeds the total: closed without -ERR", async () => {
    const c = await connectReady(srv.port, { headers: true });
    c.send("HPUB foo 20 10\r\n");
    await expectSilentClose(c);
  });

  test("HPUB from a client that did not set headers:true: closed without -ERR", async () => {
    const c = await connectReady(srv.port);
    c.send("HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
    await expectSilentClose(c);
  });

  test.each(["foo..bar", "foo.>.bar", ".foo", "foo.", ">.foo", "."])(
    "SUB %j: -ERR 'Invalid Subject', connection stays open",
    async (subject) => {
      const c = await connectReady(srv.port);
      c.send(`SUB ${subject} 1\r\n`);
      await c.expect(err("Invalid Subject"));
      await expectOpen(c);
    },
  );

  test("tokens that merely contain * or > are literals, not wildcards", async () => {
    const c = await connectReady(srv.port);
    c.send("SUB foo.*bar 1\r\nSUB a> 2\r\nPUB foo.xbar 1\r\nx\r\nPUB foo.*bar 1\r\ny\r\nPUB a.b 1\r\nz\r\nPUB a> 1\r\nw\r\n");
    expect(raws(await c.flush())).toEqual(["MSG foo.*bar 1 1\r\ny\r\n", "MSG a> 2 1\r\nw\r\n"]);
  });

  test("pedantic: a wildcard PUB subject gets -ERR 'Invalid Publish Subject', and the message still goes", async () => {
    const c = await connectReady(srv.port, { pedantic: true });
    c.send("SUB foo.* 1\r\nPUB foo.* 2\r\nhi\r\n");
    const frames = await c.flush();
    expect(raws(frames)).toEqual([err("Invalid Publish Subject"), "MSG foo.* 1 2\r\nhi\r\n"]);
    expect(c.closed).toBe(false);
  });

  test("not pedantic: a wildcard PUB subject is not checked", async () => {
    const c = await connectReady(srv.port, { pedantic: false });
    c.send("SUB foo.* 1\r\nPUB foo.* 2\r\nhi\r\n");
    expect(raws(await c.flush())).toEqual(["MSG foo.* 1 2\r\nhi\r\n"]);
  });

  test("a PUB subject with an empty token reaches nobody, not even >", async () => {
    const c = await connectReady(srv.port);
    c.send("SUB > 1\r\nPUB foo..bar 2\r\nhi\r\nPUB .foo 2\r\nhi\r\nPUB ok 2\r\nhi\r\n");
    expect(raws(await c.flush())).toEqual(["MSG ok 1 2\r\nhi\r\n"]);
    const p = await connectReady(srv.port, { pedantic: true });
    p.send("SUB > 1\r\nPUB foo..bar 2\r\nhi\r\n");
    expect(raws(await p.flush())).toEqual([err("Invalid Publish Subject")]);
  });
});

describe("subscriptions", () => {
  test("a SUB reusing a sid in use is ignored", async () => {
    const c = await connectReady(srv.port);
    c.send("SUB foo 1\r\nSUB bar 1\r\nPUB bar 1\r\nb\r\nPUB foo 1\r\nf\r\n");
    expect(raws(await c.flush())).toEqual(["MSG foo 1 1\r\nf\r\n"]);
  });

  test("sids are texts: `1`, `01`, `1.0`, `a`, a 16-digit one are different subscriptions, each MSG carries its own", async () => {
    const c = await connectReady(srv.port);
    const sids = ["1", "01", "1.0", "a", "1234567890123456", "123456789012345"];
    c.send(sids.map((sid) => `SUB foo ${sid}\r\n`).join("") + "PUB foo 1\r\nx\r\n");
    expect(raws(await c.flush()).sort()).toEqual(sids.map((sid) => `MSG foo ${sid} 1\r\nx\r\n`).sort());
    c.send("UNSUB 01\r\nUNSUB 1234567890123456\r\nUNSUB 1.0\r\nPUB foo 1\r\ny\r\n"); // `1` and its neighbours stay
    expect(raws(await c.flush()).sort()).toEqual(["1", "a", "123456789012345"].map((sid) => `MSG foo ${sid} 1\r\ny\r\n`).sort());
  });

  const pubs = (n: number, subject = "foo") => Array.from({ length: n }, (_, i) => `PUB ${subject} ${String(i).length}\r\n${i}\r\n`).join("");

  test("UNSUB <sid> <max>: removed after max deliveries", async () => {
    const c = await connectReady(srv.port);
    c.send(`SUB foo 1\r\nUNSUB 1 2\r\n${pubs(4)}`);
    expect(raws(await c.flush())).toEqual(["MSG foo 1 1\r\n0\r\n", "MSG foo 1 1\r\n1\r\n"]);
    c.send(pubs(1));
    expect(raws(await c.flush())).toEqual([]);
  });

  test("UNSUB max counts deliveries made before it", async () => {
    const c = await connectReady(srv.port);
    c.send(`SUB foo 1\r\n${pubs(2)}UNSUB 1 3\r\n${pubs(3)}`);
    expect(raws(await c.flush()).length).toBe(3);
  });

  test("UNSUB max ≤ already delivered removes at once", async () => {
    const c = await connectReady(srv.port);
    c.send(`SUB foo 1\r\n${pubs(3)}UNSUB 1 2\r\n${pubs(2)}`);
    expect(raws(await c.flush()).length).toBe(3);
  });

  test("UNSUB with max 0 removes at once; UNSUB of an unknown sid is not an error", async () => {
    const c = await connectReady(srv.port);
    c.send(`SUB foo 1\r\nUNSUB 1 0\r\n${pubs(2)}UNSUB 99\r\n`);
    expect(raws(await c.flush())).toEqual([]);
  });

  test("after UNSUB, the sid can be used again", async () => {
    const c = await connectReady(srv.port);
    c.send("SUB foo 1\r\nUNSUB 1\r\nSUB bar 1\r\nPUB foo 1\r\nf\r\nPUB bar 1\r\nb\r\n");
    expect(raws(await c.flush())).toEqual(["MSG bar 1 1\r\nb\r\n"]);
  });

  test("a closed connection's subscriptions are gone: requests to it get a 503", async () => {
    const sub = await connectReady(srv.port);
    sub.send("SUB leaving 1\r\n");
    await sub.flush();
    const req = await connectReady(srv.port, { headers: true, no_responders: true });
    req.send("SUB inbox 1\r\nPUB leaving inbox 0\r\n\r\n");
    expect(raws(await req.flush())).toEqual([]);
    sub.close();
    await waitFor(
      async () => {
        req.send("PUB leaving inbox 0\r\n\r\n");
        return (await req.flush()).some((f) => f.raw === "HMSG inbox 1 16 16\r\nNATS/1.0 503\r\n\r\n\r\n");
      },
      10_000,
      "the server to drop the closed connection's subscription",
      20,
    );
  });

  test("queue subscribers on one connection: one member per message; plain subscriber gets all", async () => {
    const c = await connectReady(srv.port);
    c.send(`SUB foo q 1\r\nSUB foo q 2\r\nSUB foo 3\r\n${pubs(50)}`);
    const frames = await c.flush();
    const bySid = (sid: string) => frames.filter((f) => f.sid === sid).length;
    expect(bySid("1") + bySid("2")).toBe(50);
    expect(bySid("3")).toBe(50);
  });

  test("echo:false: the publishing connection is skipped, others still receive", async () => {
    const quiet = await connectReady(srv.port, { echo: false });
    const other = await connectReady(srv.port);
    other.send("SUB echo 1\r\n");
    await other.flush();
    quiet.send("SUB echo 1\r\nPUB echo 2\r\nhi\r\n");
    expect(raws(await quiet.flush())).toEqual([]);
    expect(raws(await other.messages(1))).toEqual(["MSG echo 1 2\r\nhi\r\n"]);
  });

  test("verbose: +OK after CONNECT, SUB, PUB and UNSUB", async () => {
    const c = await connectRaw(srv.port, { connect: { verbose: true } });
    c.send("SUB foo 1\r\nPUB foo 2\r\nhi\r\nUNSUB 1\r\nUNSUB 42\r\n");
    const frames = await c.flush();
    expect(raws(frames)).toEqual(["+OK\r\n", "+OK\r\n", "+OK\r\n", "MSG foo 1 2\r\nhi\r\n", "+OK\r\n", "+OK\r\n"]);
  });

  test("pedantic and verbose: -ERR, then +OK, then the message", async () => {
    const c = await connectRaw(srv.port, { connect: { verbose: true, pedantic: true } });
    c.send("SUB foo.* 1\r\nPUB foo.* 2\r\nhi\r\n");
    expect(raws(await c.flush())).toEqual(["+OK\r\n", "+OK\r\n", err("Invalid Publish Subject"), "+OK\r\n", "MSG foo.* 1 2\r\nhi\r\n"]);
  });
});

describe("headers and no-responders", () => {
  test("HPUB reaches a headers:false subscriber as MSG with the headers stripped", async () => {
    const plain = await connectReady(srv.port);
    plain.send("SUB strip 1\r\n");
    await plain.flush();
    const pub = await connectReady(srv.port, { headers: true });
    const hdr = "NATS/1.0\r\nA: 1\r\n\r\n";
    pub.send(`HPUB strip reply ${hdr.length} ${hdr.length + 2}\r\n${hdr}hi\r\n`);
    await pub.flush();
    expect(raws(await plain.messages(1))).toEqual(["MSG strip 1 reply 2\r\nhi\r\n"]);
  });

  test("a request to nobody comes back as HMSG with a bare 503 status", async () => {
    const c = await connectReady(srv.port, { headers: true, no_responders: true });
    c.send("SUB inbox.* 7\r\nPUB nobody inbox.1 2\r\nhi\r\nHPUB nobody inbox.2 12 14\r\nNATS/1.0\r\n\r\nhi\r\n");
    expect(raws(await c.flush())).toEqual([
      "HMSG inbox.1 7 16 16\r\nNATS/1.0 503\r\n\r\n\r\n",
      "HMSG inbox.2 7 16 16\r\nNATS/1.0 503\r\n\r\n\r\n",
    ]);
  });

  test("no 503 without no_responders, without a reply subject, or when someone listens", async () => {
    const off = await connectReady(srv.port, { headers: true });
    off.send("SUB inbox 7\r\nPUB nobody inbox 2\r\nhi\r\n");
    expect(raws(await off.flush())).toEqual([]);
    const on = await connectReady(srv.port, { headers: true, no_responders: true });
    on.send("SUB inbox 7\r\nSUB svc 8\r\nPUB nobody 2\r\nhi\r\nPUB svc inbox 2\r\nhi\r\n");
    expect(raws(await on.flush())).toEqual(["MSG svc 8 inbox 2\r\nhi\r\n"]);
  });
});

describe("connections", () => {
  test("over max_connections: INFO, then -ERR 'maximum connections exceeded', closed", async () => {
    const s = await startServer({ maxConnections: 2 });
    // The harness's readiness probe was a connection too; retry until the server has let go of it.
    const admitted = () =>
      waitFor(() => connectReady(s.port).catch(() => undefined), 10_000, "a connection to be admitted", 50);
    const a = await admitted();
    await admitted();
    const third = await connectRaw(s.port); // the INFO comes first
    await expectErrThenClose(third, "maximum connections exceeded");
    a.close();
    // Once the server has noticed the close, there is room again.
    await waitFor(
      async () => {
        const c = await connectRaw(s.port, { connect: { verbose: false } });
        c.send("PING\r\n");
        const f = await c.next().catch(() => undefined);
        c.close();
        return f?.raw === "PONG\r\n";
      },
      10_000,
      "a free connection slot",
      50,
    );
  });

  // The timer-bound tests run side by side (each waits seconds for the server's timers, on its own connection).
  describe("with ping_interval 1s, ping_max 2", () => {
    let pinger: RunningServer;
    beforeAll(async () => {
      pinger = await startServer({ pingInterval: "1s", pingMax: 2 });
    });

    test.concurrent("a client that ignores PINGs gets PING, PING, then -ERR 'Stale Connection' and is closed", async () => {
      const c = await connectRaw(pinger.port, { autoPong: false, connect: { verbose: false } });
      const frames = await c.readUntil((f) => f.op === "-ERR", 15_000);
      expect(raws(frames)).toEqual(["PING\r\n", "PING\r\n", err("Stale Connection")]);
      expect(await c.waitClosed()).toBe(true);
    });

    test.concurrent("a client that never sends CONNECT is pinged and closed as stale too", async () => {
      const c = await connectRaw(pinger.port, { autoPong: false });
      const frames = await c.readUntil((f) => f.op === "-ERR", 15_000);
      expect(raws(frames)).toEqual(["PING\r\n", "PING\r\n", err("Stale Connection")]);
      expect(await c.waitClosed()).toBe(true);
    });

    test.concurrent("a client that answers PINGs stays connected", async () => {
      const c = await connectRaw(pinger.port, { autoPong: false, connect: { verbose: false } });
      for (let i = 0; i < 4; i++) {
        await c.expect("PING\r\n", 5_000);
        c.send("PONG\r\n");
      }
      c.send("SUB alive 1\r\nPUB alive 2\r\nok\r\n");
      const frames = await c.readUntil((f) => f.op === "MSG", 5_000);
      expect(frames.filter((f) => f.op !== "PING").map((f) => f.raw)).toEqual(["MSG alive 1 2\r\nok\r\n"]);
      expect(c.closed).toBe(false);
    });
  });

  test.concurrent("with default settings the first server PING comes about 2 s after CONNECT", async () => {
    const c = await connectRaw(srv.port, { autoPong: false, connect: { verbose: false } });
    const t0 = performance.now();
    await c.expect("PING\r\n", 10_000);
    const after = performance.now() - t0;
    c.send("PONG\r\n");
    expect(after).toBeGreaterThan(1_000);
    expect(after).toBeLessThan(6_000);
    await expectOpen(c);
  });

  test.concurrent("without auth there is no CONNECT timeout: a silent client is still open after 3 s", async () => {
    const c = await connectRaw(srv.port);
    expect(await c.waitClosed(3_000)).toBe(false);
    c.send("PING\r\n");
    await c.expect("PONG\r\n");
  });
});

describe("no_header_support", () => {
  test("INFO says headers: false, and an HPUB closes the connection even after CONNECT asked for headers", async () => {
    const srv = await startServer({ config: "no_header_support: true\n" });
    const c = await connectRaw(srv.port);
    expect(c.info?.headers).toBe(false);
    c.send('CONNECT {"verbose":false,"pedantic":false,"headers":true}\r\nSUB x 1\r\nPUB x 1\r\na\r\nPING\r\n');
    const frames = await c.readUntil((f) => f.op === "PONG");
    expect(frames.map((f) => f.raw)).toEqual(["MSG x 1 1\r\na\r\n", "PONG\r\n"]);
    c.send("HPUB x 12 13\r\nNATS/1.0\r\n\r\nb\r\n");
    expect(await c.waitClosed(5_000)).toBe(true); // as an HPUB before CONNECT {"headers":true}: no -ERR
    expect(c.frames.map((f) => f.raw)).toEqual([]);
  });
});
