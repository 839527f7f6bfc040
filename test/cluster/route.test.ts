// The route protocol in one process: two unstarted servers joined by a Route each over fake sockets.
// What one route writes is fed to the other split at every byte; a message reached through several
// subscriptions of one route is one frame naming its queue groups; routed messages reach local
// subscribers only.
import { describe, expect, test, vi } from "vitest";
import { InternalClient, type InternalMessage } from "../../src/internal-client.ts";
import { FrameKind, MSG_HEADER, MsgAt, MsgFlag } from "../../src/cluster/protocol.ts";
import { accountTable } from "../../src/cluster/route.ts";
import type { Server } from "../../src/server.ts";
import { connectRoute, interest, server } from "./fake-route.ts";

/** The MSG frames in a byte stream, decoded. */
function msgFrames(bytes: Buffer): { subject: string; flags: number; queues: string[]; account?: number }[] {
  const out = [];
  let at = 0;
  while (at < bytes.length) {
    const length = bytes.readUInt32BE(at);
    const end = at + 4 + length;
    if (bytes[at + 4] === FrameKind.MSG) {
      const subjectLength = bytes.readUInt16BE(at + MsgAt.SUBJECT_LENGTH);
      const headLength = bytes.readUInt16BE(at + MsgAt.HEAD_LENGTH);
      const payloadLength = bytes.readUInt32BE(at + MsgAt.PAYLOAD_LENGTH);
      const count = bytes.readUInt16BE(at + MsgAt.QUEUE_COUNT);
      let q = at + MSG_HEADER + subjectLength + headLength + payloadLength + 2;
      const queues: string[] = [];
      for (let k = 0; k < count; k++) {
        const n = bytes.readUInt16BE(q);
        queues.push(bytes.latin1Slice(q + 2, q + 2 + n));
        q += 2 + n;
      }
      expect(q).toBe(end);
      const account = bytes.readUInt16BE(at + MsgAt.ACCOUNT);
      out.push({ subject: bytes.latin1Slice(at + MSG_HEADER, at + MSG_HEADER + subjectLength), flags: bytes[at + MsgAt.FLAGS]!, queues, ...(account === 0 ? {} : { account }) });
    }
    at = end;
  }
  return out;
}

const tick = () => new Promise((r) => setTimeout(r, 0));

test("one frame per message per route, naming the queue group picked; the other side delivers it once per local subscription, split at every byte", async () => {
  const s1 = server();
  const s2 = server();
  const a = connectRoute(s1, "B"); // on s1: the route to s2
  const b = connectRoute(s2, "A"); // on s2: the route to s1

  // s2's interest: two overlapping plain subscriptions and a queue group, told to s1 over `a`.
  const local = new InternalClient(s2, "local");
  const got: string[] = [];
  const keep = (tag: string) => (m: InternalMessage) =>
    got.push(`${tag} ${m.subject} ${m.reply} ${m.headers?.toString("latin1").trim()} ${m.payload.toString()}`);
  local.subscribe("orders.*", keep("wild"));
  local.subscribe("orders.new", keep("lit"));
  local.subscribe("orders.new", keep("q1"), "workers");
  local.subscribe("orders.new", keep("q2"), "workers");
  a.route.onRead(Buffer.concat([interest("orders.*", null, 1), interest("orders.new", null, 1), interest("orders.new", "workers", 2)]));
  expect(a.route.subs.size).toBe(3);

  const publisher = new InternalClient(s1, "pub");
  const headers = Buffer.from("NATS/1.0\r\nK: v\r\n\r\n");
  expect(publisher.publish("orders.new", Buffer.from("hello"), "reply.1", headers)).toBe(true);
  await tick(); // the once-per-tick flush
  const bytes = Buffer.concat(a.written.splice(0));
  const frames = msgFrames(bytes);
  expect(frames).toEqual([{ subject: "orders.new", flags: MsgFlag.REPLY | MsgFlag.HEADERS, queues: ["workers"] }]);

  // Fed to the other side split at every byte: each split delivers it exactly once to each plain
  // subscription and to one member of the group.
  for (let cut = 1; cut < bytes.length; cut++) {
    got.length = 0;
    b.route.onRead(Buffer.from(bytes.subarray(0, cut)));
    b.route.onRead(Buffer.from(bytes.subarray(cut)));
    await tick();
    expect(got.filter((g) => g.startsWith("wild ") || g.startsWith("lit ")).sort()).toEqual([
      "lit orders.new reply.1 NATS/1.0\r\nK: v hello",
      "wild orders.new reply.1 NATS/1.0\r\nK: v hello",
    ]);
    expect(got.filter((g) => g.startsWith("q")).length).toBe(1);
  }
  expect(b.refusals).toEqual([]);
});

test("a message for a queue group only: other plain subscribers on that node do not get it", async () => {
  const s1 = server();
  const s2 = server();
  const a = connectRoute(s1, "B");
  const b = connectRoute(s2, "A");
  const local = new InternalClient(s2, "local");
  const got: string[] = [];
  local.subscribe("jobs", () => got.push("plain"));
  local.subscribe("jobs", () => got.push("member"), "g");
  // s1 hears only of the group (say, s2's plain interest has not arrived yet).
  a.route.onRead(interest("jobs", "g", 1));
  new InternalClient(s1, "pub").publish("jobs", Buffer.from("x"));
  await tick();
  const bytes = Buffer.concat(a.written.splice(0));
  expect(msgFrames(bytes)).toEqual([{ subject: "jobs", flags: MsgFlag.QUEUES_ONLY, queues: ["g"] }]);
  b.route.onRead(bytes);
  await tick();
  expect(got).toEqual(["member"]);
});

test("a routed message never goes back out on a route, and a local member of a group is preferred to a remote one", async () => {
  const s1 = server();
  const toB = connectRoute(s1, "B");
  const toC = connectRoute(s1, "C");
  // B and C both want `x`; C has a member of group g on `y`.
  toB.route.onRead(interest("x", null, 1));
  toC.route.onRead(interest("x", null, 1));
  toC.route.onRead(interest("y", "g", 5));
  const local = new InternalClient(s1, "local");
  const got: string[] = [];
  local.subscribe("x", () => got.push("x"));

  // A message from B for `x`: delivered here, not sent on to C (nor back to B).
  const fromB = connectRoute(server(), "peer"); // only as an encoder: a route on another server
  const encoder = new InternalClient(fromB.route.server, "enc");
  fromB.route.onRead(interest("x", null, 1));
  encoder.publish("x", Buffer.from("1"));
  await tick();
  toC.written.length = 0;
  toB.written.length = 0;
  toB.route.onRead(Buffer.concat(fromB.written.splice(0)));
  await tick();
  expect(got).toEqual(["x"]);
  expect(msgFrames(Buffer.concat([...toB.written, ...toC.written]))).toEqual([]);

  // A local member of g: every message of a local publisher goes to it, none to C.
  local.subscribe("y", () => got.push("member"), "g");
  const pub = new InternalClient(s1, "pub");
  for (let i = 0; i < 50; i++) pub.publish("y", Buffer.from("m"));
  await tick();
  expect(got.filter((g) => g === "member").length).toBe(50);
  expect(msgFrames(Buffer.concat(toC.written))).toEqual([]);
});

test("bad frames close the route with a reason", () => {
  const s = server();
  const w = connectRoute(s, "B");
  const bad = interest("foo..bar", null, 1); // an invalid subject
  w.route.onRead(bad);
  expect(w.route.closed).toBe(true);
  expect(w.refusals[0]).toMatch(/invalid interest subject/);
});

describe("accounts", () => {
  // Two nodes with the same accounts listed in another order: indexes differ, names agree.
  function pair() {
    const s1 = server(["A", "B"]);
    const s2 = server(["B", "A"]);
    const a = connectRoute(s1, "N2", accountTable(s2).names); // on s1: the route to s2
    const b = connectRoute(s2, "N1", accountTable(s1).names); // on s2: the route to s1
    const acc = (s: Server, name: string) => s.accounts.get(name)!;
    const index = (s: Server, name: string) => accountTable(s).names.indexOf(name);
    return { s1, s2, a, b, acc, index };
  }

  test("the HELLO lists the accounts, $G first", () => {
    const s = server(["A", "B"]);
    expect(accountTable(s).names[0]).toBe("$G");
    expect([...accountTable(s).names].sort()).toEqual(["$G", "$SYS", "A", "B"]);
  });

  test("interest goes into the Sublist of the account it names, by name; a message is framed with its account and delivered in it only", async () => {
    const { s1, s2, a, b, acc, index } = pair();
    // s2 subscribes `orders` in A and, on the same subject, in B with a queue group; both are told to s1 over `a`.
    const gotA: string[] = [];
    const gotB: string[] = [];
    new InternalClient(s2, "a", acc(s2, "A")).subscribe("orders", (m) => gotA.push(m.payload.toString()));
    const inB = new InternalClient(s2, "b", acc(s2, "B"));
    inB.subscribe("orders", (m) => gotB.push(`plain ${m.payload.toString()}`));
    a.route.onRead(Buffer.concat([interest("orders", null, 1, index(s2, "A"))]));
    expect(acc(s1, "A").sublist.match("orders").plain.length).toBe(1);
    expect(acc(s1, "B").sublist.match("orders").plain.length).toBe(0);
    expect(s1.sublist.match("orders").plain.length).toBe(0);

    // Published in B on s1: s1 knows no interest in B → nothing on the wire.
    new InternalClient(s1, "pubB", acc(s1, "B")).publish("orders", Buffer.from("b1"));
    await tick();
    expect(msgFrames(Buffer.concat(a.written.splice(0)))).toEqual([]);

    // Published in A on s1: one frame naming A by s1's index; s2 delivers it to A only.
    new InternalClient(s1, "pubA", acc(s1, "A")).publish("orders", Buffer.from("a1"));
    await tick();
    const bytes = Buffer.concat(a.written.splice(0));
    expect(msgFrames(bytes)).toEqual([{ subject: "orders", flags: 0, queues: [], account: index(s1, "A") }]);
    b.route.onRead(bytes);
    await tick();
    expect(gotA).toEqual(["a1"]);
    expect(gotB).toEqual([]);

    // The same frame relabelled as B (s1's index of B) reaches B's subscriber, not A's.
    bytes.writeUInt16BE(index(s1, "B"), MsgAt.ACCOUNT);
    b.route.onRead(bytes);
    await tick();
    expect(gotA).toEqual(["a1"]);
    expect(gotB).toEqual(["plain a1"]);

    // UNSUB in A leaves A's Sublist; closing the route empties every account's.
    a.route.onRead(Buffer.concat([interest("orders", "q", 1, index(s2, "B")), interest("orders", null, -1, index(s2, "A"))]));
    expect(acc(s1, "A").sublist.match("orders").plain.length).toBe(0);
    expect(acc(s1, "B").sublist.match("orders").queues.length).toBe(1);
    a.route.close("test", null);
    expect(acc(s1, "B").sublist.match("orders").queues.length).toBe(0);
  });

  test("the same subject in two accounts is two interest keys, and a message matched in one account is not deduplicated with another", async () => {
    const { s1, s2, a, acc, index } = pair();
    a.route.onRead(Buffer.concat([interest("x", null, 1, index(s2, "A")), interest("x", null, 1, index(s2, "B"))]));
    expect(a.route.subs.size).toBe(2);
    new InternalClient(s1, "pubA", acc(s1, "A")).publish("x", Buffer.from("1"));
    new InternalClient(s1, "pubB", acc(s1, "B")).publish("x", Buffer.from("2"));
    await tick();
    expect(msgFrames(Buffer.concat(a.written.splice(0))).map((f) => f.account)).toEqual([index(s1, "A"), index(s1, "B")]);
  });

  test("an account the other node has and this one lacks: its interest and messages are ignored, logged once", async () => {
    const s1 = server(["A"]);
    const s2 = server(["A", "C"]);
    const warn = vi.spyOn(s1.log, "warn");
    const a = connectRoute(s1, "N2", accountTable(s2).names);
    const again = connectRoute(s1, "N2bis", accountTable(s2).names);
    expect(warn.mock.calls.filter(([t]) => /has accounts this node does not: C;/.test(t)).length).toBe(1);
    const c = accountTable(s2).names.indexOf("C");
    a.route.onRead(interest("secret", null, 1, c));
    expect(a.route.closed).toBe(false);
    expect(a.route.subs.size).toBe(0);
    for (const acc of s1.accounts.all()) expect(acc.sublist.match("secret").plain.length).toBe(0);

    // A message in C: dropped, the route stays.
    const got: string[] = [];
    for (const acc of s1.accounts.all()) new InternalClient(s1, `l-${acc.name}`, acc).subscribe("secret", () => got.push(acc.name));
    const enc = connectRoute(s2, "N1", accountTable(s1).names);
    enc.route.onRead(interest("secret", null, 1, accountTable(s1).names.indexOf("A")));
    new InternalClient(s2, "pubA", s2.accounts.get("A")!).publish("secret", Buffer.from("x"));
    await tick();
    const bytes = Buffer.concat(enc.written.splice(0));
    bytes.writeUInt16BE(c, MsgAt.ACCOUNT);
    a.route.onRead(bytes);
    await tick();
    expect(got).toEqual([]);
    expect(a.route.closed).toBe(false);
    again.route.close("test", null);
  });

  test("an account index beyond the HELLO's list is a protocol error", () => {
    const s = server(["A"]);
    const w = connectRoute(s, "N2");
    w.route.onRead(interest("x", null, 1, 99));
    expect(w.route.closed).toBe(true);
    expect(w.refusals[0]).toMatch(/interest for account 99/);
  });
});
