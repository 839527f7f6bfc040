// The route protocol in one process: two unstarted servers joined by a Route each over fake sockets.
// What one route writes is fed to the other split at every byte; a message reached through several
// subscriptions of one route is one frame naming its queue groups; routed messages reach local
// subscribers only.
import { expect, test } from "vitest";
import type { Socket } from "bun";
import { InternalClient, type InternalMessage } from "../../src/internal-client.ts";
import { Logger } from "../../src/log.ts";
import { defaultOptions } from "../../src/options.ts";
import { Server } from "../../src/server.ts";
import { FrameKind, MSG_HEADER, MsgAt, MsgFlag, PROTOCOL_VERSION, helloFrame, interestFrameLength, writeInterestFrame } from "../../src/cluster/protocol.ts";
import { Route, RouteState, type RouteOwner, type RouteSocketData } from "../../src/cluster/route.ts";

function server(): Server {
  return new Server({ ...defaultOptions, wsAllowedOrigins: [], routes: [], host: "127.0.0.1", port: -1 }, new Logger(false, false));
}

interface Wire {
  route: Route;
  written: Buffer[];
  refusals: string[];
}

function connectRoute(s: Server, name: string): Wire {
  const written: Buffer[] = [];
  const refusals: string[] = [];
  const socket = {
    write(buf: Buffer, start: number, length: number) {
      written.push(Buffer.from(buf.subarray(start, start + length)));
      return length;
    },
    end() {},
  } as unknown as Socket<RouteSocketData>;
  const owner: RouteOwner = {
    server: s,
    onHello(route) {
      route.state = RouteState.OPEN;
      return null;
    },
    onClosed(_route, reason) {
      refusals.push(reason);
    },
  };
  const route = new Route(owner, socket, false, "127.0.0.1", 1);
  route.onRead(helloFrame({ v: PROTOCOL_VERSION, cluster: "t", id: `${name}:1`, inc: 1, server_id: name, server_name: name }));
  expect(route.state).toBe(RouteState.OPEN);
  return { route, written, refusals };
}

function interest(subject: string, queue: string | null, weight: number): Buffer {
  const frame = Buffer.alloc(interestFrameLength(subject, queue, weight));
  writeInterestFrame(frame, 0, subject, queue, weight);
  return frame;
}

/** The MSG frames in a byte stream, decoded. */
function msgFrames(bytes: Buffer): { subject: string; flags: number; queues: string[] }[] {
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
      out.push({ subject: bytes.latin1Slice(at + MSG_HEADER, at + MSG_HEADER + subjectLength), flags: bytes[at + MsgAt.FLAGS]!, queues });
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
