// A JetStream delivery across a route (src/jetstream/deliver.ts deliverAs → Route.deliverAs → the other
// node's Route): routed by the deliver subject (an inbox), shown with the message's own subject, as on
// one server. In one process: two unstarted servers joined by a Route each over fake sockets; what one
// writes is fed to the other split at every byte.
import { expect, test } from "vitest";
import { InternalClient, type InternalMessage } from "../../src/internal-client.ts";
import { deliverAs } from "../../src/jetstream/deliver.ts";
import { FrameKind, MSG_HEADER, MsgAt, MsgFlag } from "../../src/cluster/protocol.ts";
import { connectRoute, interest, server } from "./fake-route.ts";

const tick = () => new Promise((r) => setTimeout(r, 0));

test("routed by the inbox, shown with the message's subject; once per route; split at every byte", async () => {
  const s1 = server(); // the JetStream node
  const s2 = server(); // the consumer's node
  const a = connectRoute(s1, "B");
  const b = connectRoute(s2, "A");
  const local = new InternalClient(s2, "local");
  const got: string[] = [];
  const keep = (tag: string) => (m: InternalMessage) => got.push(`${tag} ${m.subject} ${m.reply} ${m.headers?.toString("latin1").trim()} ${m.payload.toString()}`);
  local.subscribe("_INBOX.x.*", keep("wild"));
  local.subscribe("_INBOX.x.1", keep("lit"));
  local.subscribe("_INBOX.x.1", keep("q1"), "g");
  local.subscribe("_INBOX.x.1", keep("q2"), "g");
  local.subscribe("orders.1", keep("other")); // the shown subject: never routed by it
  // s1 hears s2's interest: two plain subscriptions matching the inbox, and the group.
  a.route.onRead(Buffer.concat([interest("_INBOX.x.*", null, 1), interest("_INBOX.x.1", null, 1), interest("_INBOX.x.1", "g", 2)]));

  const js = new InternalClient(s1, "jetstream");
  const headers = Buffer.from("NATS/1.0\r\nNats-Msg-Id: 7\r\n\r\n");
  expect(deliverAs(s1, js, "_INBOX.x.1", "orders.1", "$JS.ACK.S.C.1.1.1.0.0", headers, Buffer.from("hello"))).toBe(true);
  await tick();
  const bytes = Buffer.concat(a.written.splice(0));
  // One frame for the three subscriptions: DELIVER_AS, naming the group.
  expect(bytes[4]).toBe(FrameKind.MSG);
  expect(4 + bytes.readUInt32BE(0)).toBe(bytes.length);
  expect(bytes[MsgAt.FLAGS]! & MsgFlag.DELIVER_AS).toBe(MsgFlag.DELIVER_AS);
  expect(bytes.readUInt16BE(MsgAt.QUEUE_COUNT)).toBe(1);
  expect(bytes.latin1Slice(MSG_HEADER, MSG_HEADER + bytes.readUInt16BE(MsgAt.SUBJECT_LENGTH))).toBe("orders.1");

  for (let cut = 1; cut < bytes.length; cut++) {
    got.length = 0;
    b.route.onRead(Buffer.from(bytes.subarray(0, cut)));
    b.route.onRead(Buffer.from(bytes.subarray(cut)));
    await tick();
    const shown = "orders.1 $JS.ACK.S.C.1.1.1.0.0 NATS/1.0\r\nNats-Msg-Id: 7 hello";
    expect(got.filter((g) => !g.startsWith("q")).sort()).toEqual([`lit ${shown}`, `wild ${shown}`]);
    expect(got.filter((g) => g.startsWith("q")).map((g) => g.slice(3))).toEqual([shown]);
  }
  expect(b.refusals).toEqual([]);
});

test("a group with no member on the JetStream node goes to one remote member; a local member is preferred", async () => {
  const s1 = server();
  const a = connectRoute(s1, "B");
  a.route.onRead(interest("deliver.push", "workers", 1));
  const js = new InternalClient(s1, "jetstream");
  deliverAs(s1, js, "deliver.push", "orders.9", null, null, Buffer.from("x"));
  await tick();
  const first = Buffer.concat(a.written.splice(0));
  expect(first[MsgAt.FLAGS]! & (MsgFlag.DELIVER_AS | MsgFlag.QUEUES_ONLY)).toBe(MsgFlag.DELIVER_AS | MsgFlag.QUEUES_ONLY);
  const here: string[] = [];
  new InternalClient(s1, "local").subscribe("deliver.push", (m) => here.push(m.subject), "workers");
  for (let i = 0; i < 20; i++) deliverAs(s1, js, "deliver.push", "orders.9", null, null, Buffer.from("x"));
  await tick();
  expect(Buffer.concat(a.written.splice(0)).length).toBe(0);
  expect(here.length).toBe(20);
  expect(here[0]).toBe("orders.9");
});

test("a malformed deliver subject closes the route", () => {
  const s1 = server();
  const a = connectRoute(s1, "B");
  a.route.onRead(interest("in.box", null, 1));
  deliverAs(s1, new InternalClient(s1, "js"), "in.box", "orders.1", null, null, Buffer.from("x"));
  return tick().then(() => {
    const bytes = Buffer.concat(a.written.splice(0));
    // Corrupt the deliver subject's length so it runs past the frame.
    const at = MSG_HEADER + bytes.readUInt16BE(MsgAt.SUBJECT_LENGTH) + bytes.readUInt16BE(MsgAt.HEAD_LENGTH) + bytes.readUInt32BE(MsgAt.PAYLOAD_LENGTH) + 2;
    bytes.writeUInt16BE(0xfff0, at);
    const b = connectRoute(server(), "A");
    b.route.onRead(bytes);
    expect(b.route.closed).toBe(true);
    expect(b.refusals[0]).toMatch(/deliver subject/);
  });
});
