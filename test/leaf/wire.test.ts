// The leafnode port on the wire (natter as the hub), bad input from either side, authentication,
// loop detection, and the WebSocket remote.
import net from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { StringCodec } from "nats";
import { HAS_NATS_SERVER, client, collect, logs, subject, waitForFlow, waitForLink } from "./helpers.ts";
import { HOST, startProc, waitFor } from "./spawn.ts";

const sc = StringCodec();
const HUB_CONFIG = `leafnodes { listen: "${HOST}:{{leaf_port}}" }\n`;

/** A raw TCP connection: what was received (latin1) and whether the other side closed. */
interface Raw {
  text(): string;
  closed(): boolean;
  send(s: string): void;
  /** Stops reading: what the other side sends waits in the kernel's buffers, then in its own. */
  pause(): void;
  end(): void;
}

async function raw(port: number): Promise<Raw> {
  const sock = net.connect({ host: HOST, port });
  let received = "";
  let closed = false;
  sock.on("data", (d) => (received += d.toString("latin1")));
  sock.on("close", () => (closed = true));
  sock.on("error", () => (closed = true));
  await new Promise<void>((resolve, reject) => {
    sock.once("connect", () => resolve());
    sock.once("error", reject);
  });
  const r: Raw = { text: () => received, closed: () => closed, send: (s) => sock.write(s), pause: () => sock.pause(), end: () => sock.destroy() };
  return r;
}

async function infoOf(r: Raw): Promise<Record<string, unknown>> {
  const line = await waitFor("the INFO line", () => /^INFO (.*) \r\n/.exec(r.text()), 5000);
  return JSON.parse(line[1]!) as Record<string, unknown>;
}

const LEAF_CONNECT = 'CONNECT {"version":"2.10.0","server_id":"NTEST","name":"raw-leaf","headers":true}\r\n';

describe("natter's leafnode port", () => {
  test("INFO as nats-server's: auth required, a nonce, info_on_connect, leafnode_urls; CONNECT answered with connect_info and interest", async () => {
    const hub = await startProc("natter", { name: "HUB", config: HUB_CONFIG });
    const hc = await client(hub);
    const s = subject("raw");
    hc.subscribe(s);
    hc.subscribe(s, { queue: "workers" });
    hc.subscribe(s, { queue: "workers" });
    await hc.flush();
    const r = await raw(hub.leafPort);
    const info = await infoOf(r);
    expect(info).toMatchObject({ auth_required: true, info_on_connect: true, headers: true, proto: 1, version: "2.11.0" });
    expect(info.client_id).toBeGreaterThan(0);
    expect(typeof info.nonce).toBe("string");
    expect(info.leafnode_urls).toEqual([`${HOST}:${hub.leafPort}`]);
    r.send(LEAF_CONNECT);
    await waitFor("connect_info, our interest and the $LDS subject", () => /connect_info/.test(r.text()) && /LS\+ \$LDS\.\S+\r\n/.test(r.text()), 5000);
    const second = JSON.parse(/INFO (.*) \r\n/.exec(r.text().slice(r.text().indexOf("\n") + 1))![1]!) as Record<string, unknown>;
    expect(second).toMatchObject({ connect_info: true, remote_account: "$G" });
    expect(second.nonce).toBeUndefined();
    expect(r.text()).toContain(`LS+ ${s}\r\n`);
    expect(r.text()).toContain(`LS+ ${s} workers 2\r\n`); // a queue group with its weight
    // A message from the raw leaf reaches the hub's subscriber; a queue-only LMSG reaches one member.
    const got = collect(hc, s);
    const members = [collect(hc, `${s}.q`, "g"), collect(hc, `${s}.q`, "g")];
    await hc.flush();
    await waitFor("LS+ for the new subscriptions", () => r.text().includes(`LS+ ${s}.q g 2\r\n`) || r.text().includes(`LS+ ${s}.q g 1\r\n`), 5000);
    r.send(`LMSG ${s} 5\r\nhello\r\nHMSG ${s} reply.x 12 17\r\nNATS/1.0\r\n\r\nworld\r\nLMSG ${s}.q | g 3\r\nqqq\r\nLMSG ${s}.q + r.y g 3\r\nrrr\r\n`);
    await waitFor("the messages", () => got.count() >= 2 && members[0]!.count() + members[1]!.count() >= 2, 5000, logs(hub));
    expect(sc.decode(got.msgs[0]!.data)).toBe("hello");
    expect(sc.decode(got.msgs[1]!.data)).toBe("world");
    expect(got.msgs[1]!.reply).toBe("reply.x");
    const qmsgs = members.flatMap((m) => m.msgs);
    expect(qmsgs.map((m) => sc.decode(m.data)).sort()).toEqual(["qqq", "rrr"]);
    expect(qmsgs.find((m) => sc.decode(m.data) === "rrr")!.reply).toBe("r.y");
    // Our PING is answered; and the hub's publishes come as LMSG.
    r.send(`LS+ ${s}.down\r\nPING\r\n`);
    await waitFor("PONG", () => r.text().includes("PONG\r\n"), 5000);
    hc.publish(`${s}.down`, sc.encode("to-raw"));
    await hc.flush();
    await waitFor("the LMSG", () => r.text().includes(`LMSG ${s}.down 6\r\nto-raw\r\n`), 5000, logs(hub));
    r.end();
  });

  test.each([
    ["garbage before CONNECT", "garbage\r\n", "Authorization Violation"],
    ["a PUB before CONNECT", "PUB foo 1\r\nx\r\n", "Authorization Violation"],
    ["a PING before CONNECT", "PING\r\n", "Authorization Violation"],
    ["a client's CONNECT (it has lang)", 'CONNECT {"lang":"go","verbose":false}\r\n', "attempted to connect to leaf node port"],
  ])("%s: -ERR and closed", async (_name, input, error) => {
    const hub = await startProc("natter", { name: "HUB", config: HUB_CONFIG });
    const r = await raw(hub.leafPort);
    await infoOf(r);
    r.send(input);
    await waitFor("the -ERR and the close", () => r.text().includes(`-ERR '${error}'\r\n`) && r.closed(), 5000, logs(hub));
  });

  test("malformed CONNECT, malformed LMSG, an oversized line: closed; the hub goes on serving", async () => {
    const hub = await startProc("natter", { name: "HUB", config: HUB_CONFIG });
    const cases = [
      "CONNECT {not json\r\n",
      `${LEAF_CONNECT}LMSG bad\r\n`,
      `${LEAF_CONNECT}LMSG foo ? r q 3\r\nabc\r\n`, // the reply indicator must be + or |
      `${LEAF_CONNECT}LMSG foo 3\r\nabcdef\r\n`,
      `${LEAF_CONNECT}LS+ foo q notanumber\r\n`,
      `${LEAF_CONNECT}HMSG foo 10 5\r\nhello\r\n`,
      `${LEAF_CONNECT}LMSG foo ${"x".repeat(70_000)}`,
      `${LEAF_CONNECT}\x00\x01\x02\r\n`,
    ];
    for (const input of cases) {
      const r = await raw(hub.leafPort);
      await infoOf(r);
      r.send(input);
      await waitFor(`a close after ${JSON.stringify(input.slice(-40))}`, () => r.closed(), 5000, logs(hub));
    }
    // An invalid subject in LS+ is refused, the connection stays.
    const r = await raw(hub.leafPort);
    await infoOf(r);
    r.send(`${LEAF_CONNECT}LS+ foo..bar\r\nPING\r\n`);
    await waitFor("-ERR then PONG", () => /-ERR 'Invalid Subscription'\r\n[\s\S]*PONG\r\n/.test(r.text()), 5000, logs(hub));
    expect(r.closed()).toBe(false);
    r.end();
    // Still serving clients and leaf nodes.
    const hc = await client(hub);
    const probe = await raw(hub.leafPort);
    await infoOf(probe);
    probe.send(`${LEAF_CONNECT}LS+ still.ok\r\n`);
    await waitFor("connect_info", () => probe.text().includes("connect_info"), 5000);
    await waitFor("the message over the leaf connection", async () => {
      hc.publish("still.ok", sc.encode("yes"));
      await hc.flush();
      return probe.text().includes("LMSG still.ok 3\r\nyes\r\n");
    }, 5000, logs(hub));
    probe.end();
  });

  test("a leaf node that stops reading is cut past max_pending as a slow consumer (natter's rule: nats-server 2.9.10 holds it to the write deadline); the hub goes on serving", async () => {
    const hub = await startProc("natter", { name: "HUB", config: `max_pending: 1048576\n${HUB_CONFIG}` });
    const r = await raw(hub.leafPort);
    await infoOf(r);
    const s = subject("slow.leaf");
    r.send(`${LEAF_CONNECT}LS+ ${s}\r\nPING\r\n`);
    await waitFor("PONG", () => r.text().includes("PONG\r\n"), 5000, logs(hub));
    r.pause();
    const hc = await client(hub);
    const payload = new Uint8Array(64 * 1024);
    // 4 MiB a round: the kernel's buffers take a few MiB, then the hub's buffer for the link passes 1 MiB.
    await waitFor("the slow consumer line", async () => {
      for (let i = 0; i < 64; i++) hc.publish(s, payload);
      await hc.flush();
      return /lid:\d+ - Slow Consumer Detected: MaxPending of 1048576 Exceeded/.test(hub.log());
    }, 20_000, logs(hub));
    await waitFor("the link closed", () => /Leafnode connection closed: Slow Consumer \(Pending Bytes\)/.test(hub.log()), 5000, logs(hub));
    const got = collect(hc, `${s}.after`);
    await hc.flush();
    hc.publish(`${s}.after`, sc.encode("still here"));
    await waitFor("a client's own message", () => got.count() === 1, 5000, logs(hub));
    r.end();
  });

  test("no CONNECT within the authorization timeout: -ERR 'Authentication Timeout'", async () => {
    const hub = await startProc("natter", { name: "HUB", config: `leafnodes {\n  listen: "${HOST}:{{leaf_port}}"\n  authorization { user: u, password: p, timeout: 0.5 }\n}\n` });
    const r = await raw(hub.leafPort);
    await infoOf(r);
    await waitFor("the timeout", () => r.text().includes("-ERR 'Authentication Timeout'\r\n") && r.closed(), 5000, logs(hub));
  });

  test("a nats client dialing the leafnode port is refused", async () => {
    const hub = await startProc("natter", { name: "HUB", config: HUB_CONFIG });
    const { connect } = await import("nats");
    await expect(connect({ servers: `${HOST}:${hub.leafPort}`, reconnect: false, timeout: 3000 })).rejects.toThrow();
    await waitFor("the log line", () => hub.log().includes("attempted to connect to leaf node port"), 5000, logs(hub));
  });
});

describe("natter as a leaf, against bad hubs", () => {
  test("a hub that is a client port, or speaks garbage: refused, redialed with backoff, natter keeps serving", async () => {
    const connections: number[] = [];
    let mode: "client-info" | "garbage" = "client-info";
    const fake = net.createServer((sock) => {
      connections.push(Date.now());
      sock.on("error", () => {});
      if (mode === "client-info") sock.write('INFO {"server_id":"X","version":"2.10.0","proto":1,"headers":true,"max_payload":1048576,"client_id":5} \r\n');
      else sock.write("\x00\x01garbage that is no protocol at all\r\n");
    });
    await new Promise<void>((resolve) => fake.listen(0, HOST, resolve));
    const port = (fake.address() as net.AddressInfo).port;
    try {
      const leaf = await startProc("natter", { name: "LEAF", config: `leafnodes { reconnect: 0.2, remotes [ { url: "nats-leaf://${HOST}:${port}" } ] }\n` });
      await waitFor("two dials", () => connections.length >= 2, 10_000, logs(leaf));
      expect(leaf.log()).toContain("attempted to connect to wrong port");
      mode = "garbage";
      const seen = connections.length;
      await waitFor("two more dials", () => connections.length >= seen + 2, 10_000, logs(leaf));
      expect(leaf.log()).toMatch(/Leafnode protocol error|Unknown Protocol Operation/);
      // Dials back off: the gaps between failed dials grow (0.2 s, 0.4 s, 0.8 s, … with jitter).
      expect(connections[3]! - connections[2]!).toBeGreaterThan(connections[1]! - connections[0]!);
      expect(leaf.running).toBe(true);
      const lc = await client(leaf);
      expect(lc.isClosed()).toBe(false);
    } finally {
      fake.close();
    }
  });

  test.skipIf(!HAS_NATS_SERVER)("a remote at a nats-server client port: wrong port, logged, redialed", async () => {
    const other = await startProc("nats-server", { name: "CLIENTPORT", config: "" });
    // Given with the flag this time (--leafnode_remote).
    const leaf = await startProc("natter", { name: "LEAF", config: "", args: ["--leafnode_remote", `nats-leaf://${HOST}:${other.port}`] });
    await waitFor("the wrong-port error", () => leaf.log().includes("attempted to connect to wrong port"), 10_000, logs(leaf));
    expect(leaf.running).toBe(true);
  });
});

describe("interest follows the connection", () => {
  test.skipIf(!HAS_NATS_SERVER)("a leaf that goes away takes its interest with it: a request to its service gets no responders at once", async () => {
    const hub = await startProc("natter", { name: "HUB", config: HUB_CONFIG });
    const leaf = await startProc("nats-server", { name: "LEAF", config: `leafnodes { remotes [ { url: "nats-leaf://${HOST}:${hub.leafPort}" } ] }\n` });
    const hc = await client(hub);
    const lc = await client(leaf);
    const s = subject("svc.gone");
    lc.subscribe(s, { callback: (_e, m) => m.respond(sc.encode("here")) });
    await lc.flush();
    await waitFor("the service through the link", async () => hc.request(s, sc.encode(""), { timeout: 500 }).then(() => true, () => false), 10_000, logs(hub, leaf));
    await leaf.kill9();
    await waitFor("no responders (not a timeout) once the leaf is gone", async () => {
      const error = await hc.request(s, sc.encode(""), { timeout: 1000 }).then(() => null, (e: Error & { code?: string }) => e);
      return error?.code === "503";
    }, 10_000, logs(hub));
  });
});

describe("authentication", () => {
  test.skipIf(!HAS_NATS_SERVER)("nats-server leaf with user:password in its URL → natter hub with leafnodes authorization; a wrong password is refused", async () => {
    const hub = await startProc("natter", { name: "HUB", config: `leafnodes {\n  listen: "${HOST}:{{leaf_port}}"\n  authorization { user: leaf, password: s3cret }\n}\n` });
    const good = await startProc("nats-server", { name: "GOOD", config: `leafnodes { remotes [ { url: "nats-leaf://leaf:s3cret@${HOST}:${hub.leafPort}" } ] }\n` });
    await waitForLink(await client(good), await client(hub), logs(hub, good));
    const bad = await startProc("nats-server", { name: "BAD", config: `leafnodes { remotes [ { url: "nats-leaf://leaf:wrong@${HOST}:${hub.leafPort}" } ] }\n` });
    await waitFor("the refusal", () => hub.log().includes("authentication error") && bad.log().includes("Authorization Violation"), 10_000, logs(hub, bad));
  });

  test.skipIf(!HAS_NATS_SERVER)("natter leaf with user/password → nats-server hub with leafnodes authorization", async () => {
    const hub = await startProc("nats-server", { name: "HUB", config: `leafnodes {\n  listen: "${HOST}:{{leaf_port}}"\n  authorization { user: leaf, password: s3cret }\n}\n` });
    const leaf = await startProc("natter", { name: "LEAF", config: `leafnodes { remotes [ { url: "nats-leaf://${HOST}:${hub.leafPort}", user: leaf, password: s3cret } ] }\n` });
    await waitForLink(await client(leaf), await client(hub), logs(hub, leaf));
  });

  test("natter hub without leafnodes authorization uses the clients' token; a leaf sends it in its URL", async () => {
    const hub = await startProc("natter", { name: "HUB", config: HUB_CONFIG, args: ["--auth", "t0ken"] });
    const leaf = await startProc("natter", { name: "LEAF", config: `leafnodes { remotes [ { url: "nats-leaf://t0ken@${HOST}:${hub.leafPort}" } ] }\n` });
    const { connect } = await import("nats");
    const hc = await connect({ servers: hub.url, token: "t0ken", reconnect: false });
    try {
      await waitForLink(await client(leaf), hc, logs(hub, leaf));
    } finally {
      await hc.close();
    }
    const intruder = await startProc("natter", { name: "INTRUDER", config: `leafnodes { remotes [ { url: "nats-leaf://${HOST}:${hub.leafPort}" } ] }\n` });
    await waitFor("the refusal", () => intruder.log().includes("Authorization Violation"), 10_000, logs(hub, intruder));
  });
});

describe("nkey leaf nodes", () => {
  test("an nkey user of the clients' authentication (here in an account) signs the hub's nonce in its leaf CONNECT", async () => {
    const { createUser } = await import("@nats-io/nkeys");
    const user = createUser();
    const publicKey = user.getPublicKey();
    const hub = await startProc("natter", { name: "HUB", config: `${HUB_CONFIG}accounts { A { users [ { nkey: ${publicKey} } ] } }\n` });
    const dial = async (signer: ReturnType<typeof createUser>): Promise<Raw> => {
      const r = await raw(hub.leafPort);
      const nonce = String((await infoOf(r)).nonce);
      const sig = Buffer.from(signer.sign(new TextEncoder().encode(nonce))).toString("base64url");
      r.send(`CONNECT ${JSON.stringify({ version: "2.10.0", server_id: "NRAWLEAF", name: "raw-leaf", headers: true, nkey: publicKey, sig })}\r\n`);
      return r;
    };
    const good = await dial(user);
    const bad = await dial(createUser()); // the right key, signed by someone else
    try {
      await waitFor("the link, bound to account A", () => /"remote_account":"A"/.test(good.text()), 5000, logs(hub));
      await waitFor("the refusal", () => bad.closed() && bad.text().includes("-ERR 'Authorization Violation'"), 5000, logs(hub));
      expect(good.closed()).toBe(false);
    } finally {
      good.end();
      bad.end();
    }
  });
});

describe("loops", () => {
  test("a cycle of leaf connections (C → B → A and C → A): detected and reported, the dialer waits 30 s, no message storm", async () => {
    const a = await startProc("natter", { name: "A", config: HUB_CONFIG });
    const b = await startProc("natter", { name: "B", config: `leafnodes {\n  listen: "${HOST}:{{leaf_port}}"\n  remotes [ { url: "nats-leaf://${HOST}:${a.leafPort}" } ]\n}\n` });
    const [ac, bc] = [await client(a), await client(b)];
    await waitForLink(ac, bc, logs(a, b));
    // C dials both: its $LDS subject comes back to it through the other path.
    const c = await startProc("natter", { name: "C", config: `leafnodes {\n  remotes [ { url: "nats-leaf://${HOST}:${b.leafPort}" }, { url: "nats-leaf://${HOST}:${a.leafPort}" } ]\n}\n` });
    await waitFor("the loop to be detected by C and reported to its hub", () =>
      /Loop detected for leafnode account="\$G". Delaying attempt to reconnect for 30s/.test(c.log()) && /Leafnode Error 'Loop detected/.test(a.log() + b.log()), 10_000, logs(a, b, c));
    await waitFor("C to wait 30 s before dialing again", () => /dialing again in 30000 ms/.test(c.log()), 10_000, logs(c));
    // The link that is no part of a cycle goes on carrying each message once.
    const s = subject("loop");
    const got = collect(bc, s);
    await bc.flush();
    await waitForFlow(ac, bc, "messages from A to B", 15_000, logs(a, b, c));
    for (let i = 0; i < 50; i++) ac.publish(s, sc.encode(`m${i}`));
    await ac.flush();
    await waitFor("50 messages", () => got.count() >= 50, 10_000, logs(a, b, c));
    await waitForFlow(ac, bc, "a last probe", 5000, logs(a, b, c));
    expect(got.count()).toBe(50);
    expect([a, b, c].every((p) => p.running)).toBe(true);
  });
});

describe.skipIf(!HAS_NATS_SERVER)("JetStream stays on each side", () => {
  test("a natter leaf with KV buckets (literal $JS.API.DIRECT.GET subscriptions) keeps its link to a nats-server hub", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "natter-leaf-js-"));
    try {
      const hub = await startProc("nats-server", { name: "HUB", config: HUB_CONFIG });
      const leaf = await startProc("natter", { name: "LEAF", config: `leafnodes { remotes [ { url: "nats-leaf://${HOST}:${hub.leafPort}" } ] }\n`, args: ["-js", "-sd", dir] });
      const lc = await client(leaf);
      const hc = await client(hub);
      await waitForLink(lc, hc, logs(hub, leaf));
      const kv = await lc.jetstream().views.kv("edgecfg", { history: 1 });
      await kv.put("k", sc.encode("v"));
      expect(sc.decode((await kv.get("k"))!.value)).toBe("v");
      // The link survived the bucket's subscriptions (a nats-server hub closes a leaf that subscribes to $JS.API.*).
      await waitForLink(lc, hc, logs(hub, leaf));
      expect(hub.log()).not.toMatch(/Permissions Violation/);
      expect(leaf.log()).not.toMatch(/Leafnode connection closed/);
      // The hub's clients do not reach the leaf's JetStream through the link.
      const error = await hc.request("$JS.API.INFO", sc.encode(""), { timeout: 3000 }).then(() => null, (e: Error) => e);
      expect(error).not.toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!HAS_NATS_SERVER)("WebSocket", () => {
  test("natter leaf → nats-server hub over ws://: pub/sub both ways", async () => {
    const hub = await startProc("nats-server", { name: "HUB", config: `websocket { host: "${HOST}", port: {{ws_port}}, no_tls: true }\nleafnodes { listen: "${HOST}:{{leaf_port}}" }\n` });
    const leaf = await startProc("natter", { name: "LEAF", config: `leafnodes { remotes [ { url: "ws://${HOST}:${hub.wsPort}" } ] }\n` });
    await waitForLink(await client(leaf), await client(hub), logs(hub, leaf));
    expect(hub.log()).toMatch(/Leafnode connection created/);
  });
});
