// `natter --procs N -js` (src/workers/store-layout.ts): the workers are the JetStream nodes of their
// cluster, each with its store under `<store_dir>/worker-<i>`. Clients on different workers see one
// JetStream (a stream created through one connection, published to through another, consumed through a
// third: every message once); a worker killed with -9 is restarted with its streams (R1), and an R3
// stream's group fails over; a single natter's store becomes worker 0's, and a store is never opened by
// two processes nor left unserved.
import { afterAll, describe, expect, test } from "vitest";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { AckPolicy, jetstream, jetstreamManager, type JetStreamManager, type StreamConfig, type StreamInfo } from "@nats-io/jetstream";
import { connect as natsConnect, type NatsConnection } from "@nats-io/transport-node";
import { freePort } from "../harness/server.ts";
import { waitFor } from "../cluster/spawn.ts";
import { BUN, HOST, REPO, live, startProcs, stopAll, workerPid, runToExit, type Procs } from "./procs-harness.ts";
import { prepareWorkerStores } from "../../src/workers/store-layout.ts";
import { Logger } from "../../src/log.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const tmp = mkdtempSync(path.join(os.tmpdir(), "natter-procs-js-"));
const clients = new Set<NatsConnection>();
afterAll(async () => {
  await Promise.all([...clients].map((nc) => nc.close().catch(() => {})));
  await stopAll();
  rmSync(tmp, { recursive: true, force: true });
});

async function connect(port: number): Promise<NatsConnection> {
  const nc = await natsConnect({ servers: `${HOST}:${port}`, timeout: 5000, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
  clients.add(nc);
  return nc;
}

/** One client on each of `n` different workers (the kernel picks each connection's worker). */
async function clientsOnWorkers(port: number, n: number): Promise<NatsConnection[]> {
  const byServer = new Map<string, NatsConnection>();
  for (let i = 0; i < 64 && byServer.size < n; i++) {
    const nc = await connect(port);
    const id = nc.info!.server_id;
    if (byServer.has(id)) {
      clients.delete(nc);
      await nc.close();
    } else {
      byServer.set(id, nc);
    }
  }
  expect(byServer.size).toBe(n);
  return [...byServer.values()];
}

/** A manager that does not ask for account info first (10008 until the meta group has a leader). */
function manager(nc: NatsConnection, timeout = 3000): Promise<JetStreamManager> {
  return jetstreamManager(nc, { timeout, checkAPI: false });
}

/** Stream create, retried while the meta group has no leader yet (10008) or not every worker yet (10005). */
async function createStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }, detail: () => string): Promise<StreamInfo> {
  let created: StreamInfo | null = null;
  await waitFor(`stream ${config.name} to be created`, async () => {
    try {
      created = await jsm.streams.add(config);
      return true;
    } catch (error) {
      if (/10008|temporarily unavailable|no suitable peers|timeout|TIMEOUT/i.test(String(error))) return false;
      throw error;
    }
  }, 20_000, detail);
  return created!;
}

/** A stream's info from this connection, asked again until `ok` holds (a restarted worker takes a moment). */
async function infoWhen(jsm: JetStreamManager, stream: string, ok: (si: StreamInfo) => boolean, detail: () => string): Promise<StreamInfo> {
  let last: StreamInfo | null = null;
  await waitFor(`stream ${stream}'s info`, async () => {
    try {
      last = await jsm.streams.info(stream);
      return ok(last);
    } catch {
      return false;
    }
  }, 20_000, detail);
  return last!;
}

/** Every message of `stream` through a durable pull consumer on `nc`: their payloads, in order. */
async function consumeAll(nc: NatsConnection, stream: string, durable: string, expected: number): Promise<string[]> {
  const jsm = await manager(nc);
  await jsm.consumers.add(stream, { durable_name: durable, ack_policy: AckPolicy.Explicit });
  const consumer = await jetstream(nc).consumers.get(stream, durable);
  const got: string[] = [];
  while (got.length < expected) {
    const batch = await consumer.fetch({ max_messages: expected - got.length, expires: 2000 });
    let n = 0;
    for await (const m of batch) {
      got.push(dec.decode(m.data));
      m.ack();
      n++;
    }
    if (n === 0) break;
  }
  // Each message once: as many deliveries as messages, none pending.
  const ci = await jsm.consumers.info(stream, durable);
  expect(ci.delivered.consumer_seq).toBe(expected);
  expect(ci.num_pending).toBe(0);
  return got;
}

/** The worker index (from its server name `w-<i>`) of a stream's leader. */
function leaderIndex(si: StreamInfo): number {
  const m = /^w-(\d+)$/.exec(si.cluster?.leader ?? "");
  if (!m) throw new Error(`no leader named w-<i> in ${JSON.stringify(si.cluster)}`);
  return Number(m[1]);
}

async function kill9Worker(p: Procs, index: number): Promise<void> {
  const pid = workerPid(p, index);
  expect(pid).not.toBeNull();
  process.kill(pid!, "SIGKILL");
  await waitFor(`worker ${index} to be restarted`, () => {
    const now = workerPid(p, index);
    return now !== null && now !== pid && /Worker \d \(pid \d+\) exited \(signal SIGKILL\)/.test(p.log());
  }, 15_000, p.log);
}

describe("natter --procs -js: one JetStream over the workers", () => {
  test("create through one worker, publish through another, consume through a third: every message once; R1 and R3", async () => {
    const sd = path.join(tmp, "three");
    const p = await startProcs(["-js", "-sd", sd, "-n", "w"], 3);
    const [a, b, c] = await clientsOnWorkers(p.port, 3) as [NatsConnection, NatsConnection, NatsConnection];
    for (let i = 0; i < 3; i++) expect(existsSync(path.join(sd, `worker-${i}`, "jetstream"))).toBe(true);

    const jsmA = await manager(a);
    const one = await createStream(jsmA, { name: "ONE", subjects: ["one.>"] }, p.log);
    const three = await createStream(jsmA, { name: "THREE", subjects: ["three.>"], num_replicas: 3 }, p.log);
    expect(one.cluster?.name).toMatch(/^natter-procs-\d+$/);
    expect(three.config.num_replicas).toBe(3);

    const jsB = jetstream(b);
    for (let i = 1; i <= 10; i++) {
      expect((await jsB.publish(`one.${i}`, enc.encode(`o${i}`))).seq).toBe(i);
      expect((await jsB.publish(`three.${i}`, enc.encode(`t${i}`), { msgID: `t${i}` })).seq).toBe(i);
    }
    const ten = (prefix: string) => Array.from({ length: 10 }, (_, i) => `${prefix}${i + 1}`);
    expect(await consumeAll(c, "ONE", "d1", 10)).toEqual(ten("o"));
    expect(await consumeAll(c, "THREE", "d3", 10)).toEqual(ten("t"));

    // kill -9 of the worker holding the R1 stream: restarted, its stream is back with its messages.
    const jsmC = await manager(c, 1000); // asked again while a worker restarts: a short timeout
    const holder = leaderIndex(await jsmC.streams.info("ONE"));
    await kill9Worker(p, holder);
    const back = await infoWhen(jsmC, "ONE", (si) => si.state.messages === 10 && si.cluster?.leader === `w-${holder}`, p.log);
    expect(back.state.last_seq).toBe(10);

    // kill -9 of the R3 stream's leader: the group fails over, nothing acknowledged is lost or doubled.
    const leader = leaderIndex(await infoWhen(jsmC, "THREE", (si) => si.cluster?.leader !== undefined, p.log));
    await kill9Worker(p, leader);
    const jsC = jetstream(c);
    let ack = null;
    await waitFor("a publish to THREE after its leader's kill", async () => {
      try {
        ack = await jsC.publish("three.after", enc.encode("after"), { msgID: "after", timeout: 1000 });
        return true;
      } catch {
        return false;
      }
    }, 20_000, p.log);
    expect(ack!.seq).toBe(11);
    expect((await jsC.publish("three.5", enc.encode("retry"), { msgID: "t5" })).duplicate).toBe(true);
    const after = await infoWhen(jsmC, "THREE", (si) => si.state.messages === 11, p.log);
    expect(after.state.last_seq).toBe(11);
  }, 90_000);
});

describe("natter --procs -js: the store_dir", () => {
  const run = (args: string[]) => runToExit(["-a", HOST, ...args]);

  test("a single natter's store becomes worker 0's; a second --procs and a single natter are refused on it; a restart with one more worker keeps it", async () => {
    const sd = path.join(tmp, "single");
    // A single natter with a stream of three messages, stopped.
    const port = await freePort();
    const single = spawn(BUN, [path.join(REPO, "src/main.ts"), "-a", HOST, "-p", String(port), "-js", "-sd", sd], { cwd: REPO, stdio: "ignore" });
    live.add(single);
    const nc = await (async () => {
      for (;;) {
        try {
          return await natsConnect({ servers: `${HOST}:${port}`, timeout: 1000 });
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    })();
    await (await jetstreamManager(nc)).streams.add({ name: "OLD", subjects: ["old.>"] });
    for (let i = 1; i <= 3; i++) await jetstream(nc).publish("old.x", enc.encode(`m${i}`));
    await nc.close();
    // While it runs, --procs does not take its store.
    const busy = await run(["--procs", "2", "-p", "-1", "-js", "-sd", sd]);
    expect(busy.code).toBe(1);
    expect(busy.stderr.trimEnd().split("\n")).toEqual([expect.stringMatching(/^natter: store_dir .* holds a single natter's store that process \d+ has open: stop it first$/)]);
    await new Promise<void>((resolve) => {
      single.once("exit", () => resolve());
      single.kill("SIGTERM");
    });
    live.delete(single);

    const p = await startProcs(["-js", "-sd", sd], 2);
    expect(existsSync(path.join(sd, "jetstream"))).toBe(false);
    expect(existsSync(path.join(sd, "worker-0", "jetstream", "$G", "streams", "OLD"))).toBe(true);
    expect(p.log()).toMatch(/JetStream: the single-process store .* is now worker 0's/);
    const [a, b] = await clientsOnWorkers(p.port, 2) as [NatsConnection, NatsConnection];
    for (const client of [a, b]) {
      const si = await infoWhen(await manager(client), "OLD", (s) => s.state.messages === 3, p.log);
      expect(si.cluster?.leader).toBeDefined();
    }
    expect(await consumeAll(b, "OLD", "d", 3)).toEqual(["m1", "m2", "m3"]);

    // The same store_dir: a second supervisor and a single natter are refused with one line.
    const second = await run(["--procs", "2", "-p", "-1", "-js", "-sd", sd]);
    expect(second.code).toBe(1);
    expect(second.stderr.trimEnd().split("\n")).toEqual([`natter: store_dir ${sd} is in use by natter --procs (pid ${p.child.pid})`]);
    p.child.kill("SIGTERM");
    expect(await p.exited).toBe(0);
    const alone = await run(["-p", "-1", "-js", "-sd", sd]);
    expect(alone.code).toBe(1);
    expect(alone.stderr.trimEnd().split("\n")).toEqual([
      `natter: cannot start JetStream: store_dir ${sd} holds the stores of natter --procs 2 (worker-0 …): start with --procs 2, a single process would not see their streams`,
    ]);
    const layout = JSON.parse(readFileSync(path.join(sd, "procs.json"), "utf8")) as { procs: number; routes: number[] };
    expect(layout.procs).toBe(2);

    // Started again, with one more worker: the first two on their kept route ports (their Raft ids),
    // the stream still served with its messages; the third joins the meta group.
    const again = await startProcs(["-js", "-sd", sd, "-n", "w"], 3);
    const grown = JSON.parse(readFileSync(path.join(sd, "procs.json"), "utf8")) as { procs: number; routes: number[] };
    expect(grown.procs).toBe(3);
    expect(grown.routes.slice(0, 2)).toEqual(layout.routes);
    const [c] = await clientsOnWorkers(again.port, 1) as [NatsConnection];
    await infoWhen(await manager(c), "OLD", (s) => s.state.messages === 3, again.log);
    await waitFor("three meta group members", async () => {
      const jsz = (await (await fetch(`http://${HOST}:${again.httpPort}/jsz`)).json()) as { meta_cluster?: { cluster_size?: number } };
      return jsz.meta_cluster?.cluster_size === 3;
    }, 15_000, again.log);
  }, 60_000);

  test("a config file's store_dir and limits: each worker has its store under it and an Nth of each limit", async () => {
    const sd = path.join(tmp, "conf");
    const conf = path.join(tmp, "limits.conf");
    writeFileSync(conf, `procs: 2\njetstream { store_dir: "${sd}", max_memory_store: 256MB, max_file_store: 1GB }\n`);
    const p = await startProcs(["-c", conf], 2);
    const jsz = (await (await fetch(`http://${HOST}:${p.httpPort}/jsz`)).json()) as { config: { max_memory: number; max_storage: number; store_dir: string } };
    expect(jsz.config).toMatchObject({ max_memory: 128 * 1024 * 1024, max_storage: 512 * 1024 * 1024, store_dir: path.join(sd, "worker-0", "jetstream") });
    p.child.kill("SIGTERM");
    expect(await p.exited).toBe(0);
  }, 30_000);

  test("the route ports are kept across starts; the lock; fewer workers than the store_dir holds is refused", () => {
    const sd = path.join(tmp, "layout");
    const log = new Logger(false, false);
    let next = 40000;
    const keep = (kept: number[], n: number) => [...kept, ...Array.from({ length: n - kept.length }, () => next++)];
    const first = prepareWorkerStores(sd, 2, (kept) => keep(kept, 2), log);
    expect(first.layout.routes).toEqual([40000, 40001]);
    first.release();
    const grown = prepareWorkerStores(sd, 3, (kept) => keep(kept, 3), log);
    expect(grown.layout.routes).toEqual([40000, 40001, 40002]);
    expect(grown.layout.cluster).toBe(first.layout.cluster);
    grown.release();
    // The lock: held by a live process, refused; left by one that is gone, taken over.
    writeFileSync(path.join(sd, "procs.pid"), String(process.ppid));
    expect(() => prepareWorkerStores(sd, 3, (kept) => keep(kept, 3), log)).toThrow(`store_dir ${sd} is in use by natter --procs (pid ${process.ppid})`);
    const gone = Bun.spawnSync(["true"]).pid;
    writeFileSync(path.join(sd, "procs.pid"), String(gone));
    prepareWorkerStores(sd, 3, (kept) => keep(kept, 3), log).release();
    expect(existsSync(path.join(sd, "procs.pid"))).toBe(false);
    expect(() => prepareWorkerStores(sd, 2, (kept) => keep(kept, 2), log)).toThrow(
      `store_dir ${sd} holds the stores of 3 --procs workers (worker-0 … worker-2): --procs 2 would leave the streams of worker-2 unserved; start with --procs 3 or more`,
    );
  });
});
