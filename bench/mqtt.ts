// MQTT side by side: natter, nats-server 2.9.10 (its MQTT 3.1.1) and Mosquitto 2.0, each started fresh on
// free ports for each run, driven by one load generator for all (this Bun script, raw MQTT 3.1.1 over TCP,
// the packet codec of src/mqtt; every message is counted where it arrives). Scenarios, each on a fresh server:
//   qos0 1:1     one publisher, one subscriber, QoS 0, at 16 B, 128 B and 1 KiB; throughput = messages the
//                subscriber counted / time
//   qos0 1:100   one publisher, 100 subscribers of the topic, the same sizes; throughput = deliveries counted
//                by all subscribers / time
//   qos1 1:1     128 B at QoS 1: the publisher keeps 100 messages in flight (PUBACK frees a slot), the
//                subscriber acknowledges every message
//   latency      publish → deliver at a paced 2000 msgs/s (128 B, QoS 0, the send time in the payload): p50, p99
//   connect      a storm of --storm clients (default 10000) connecting with a session (clean session = false),
//                200 CONNECTs in flight at a time, bounded by 60 s: CONNACKs per second
//   idle-mem     resident memory grown per idle MQTT connection (--idle clients, default 1000, 3 s idle)
// Usage: npm run bench:mqtt [-- --duration 3 --rounds 3 --servers natter,nats,mosquitto --only qos0,fanout]
// The generator is one Bun process: on this 2-core machine it competes with the server for a core, so the
// numbers are comparable with each other, not absolute.
import net from "node:net";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { encodePacket } from "../src/mqtt/encode.ts";
import { PacketType, type Packet } from "../src/mqtt/packets.ts";
import { freePort, ROOT } from "./servers.ts";
import { killAll, track, untrack } from "./children.ts";

type Kind = "natter" | "nats" | "mosquitto";
const args = process.argv.slice(2);
const flag = (name: string, fallback: string) => {
  const k = args.indexOf(`--${name}`);
  return k >= 0 && args[k + 1] !== undefined ? args[k + 1]! : fallback;
};
const DURATION_S = Number(flag("duration", "3"));
const SIZES = flag("sizes", "16,128,1024").split(",").map(Number);
const STORM_CLIENTS = Number(flag("storm", "10000"));
const ONLY = flag("only", "qos0,fanout,qos1,latency,connect,idle").split(",");
const SERVERS = flag("servers", "natter,nats,mosquitto").split(",") as Kind[];
const IDLE_CLIENTS = Number(flag("idle", "1000"));
/** --port N: run the throughput scenarios against a server already running there (e.g. under a profiler). */
const EXISTING_PORT = Number(flag("port", "0"));

interface Running {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

async function start(kind: Kind): Promise<Running> {
  const port = await freePort();
  const natsPort = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), "natter-mqtt-bench-"));
  let cmd: string[];
  if (kind === "natter") {
    cmd = [path.join(ROOT, "node_modules/.bin/bun"), "src/main.ts", "-a", "127.0.0.1", "-p", String(natsPort), "-js", "-sd", dir, "--mqtt_port", String(port)];
  } else if (kind === "nats") {
    const conf = path.join(dir, "nats.conf");
    writeFileSync(conf, `server_name: bench\nlisten: 127.0.0.1:${natsPort}\njetstream { store_dir: "${dir}" }\nmqtt { host: 127.0.0.1, port: ${port} }\n`);
    cmd = [process.env.NATS_SERVER ?? "nats-server", "-c", conf];
  } else {
    const conf = path.join(dir, "mosquitto.conf");
    writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n`);
    cmd = ["mosquitto", "-c", conf];
  }
  const child = Bun.spawn(cmd, { cwd: ROOT, stdout: "ignore", stderr: "ignore" });
  track(child);
  const deadline = Date.now() + 15_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, "127.0.0.1", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`${kind} did not start`);
    await Bun.sleep(20);
  }
  return {
    port,
    pid: child.pid,
    stop: async () => {
      child.kill("SIGKILL");
      await child.exited;
      untrack(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A raw MQTT 3.1.1 client: writes packets, counts PUBLISH packets received, answers as told. */
class Client {
  received = 0;
  private pending = Buffer.alloc(0);
  onPublish: ((qos: number, packetId: number) => void) | null = null;
  onAck: ((type: number, packetId: number) => void) | null = null;
  private constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on("data", (data: Buffer) => this.read(data));
    socket.on("error", () => {});
  }

  /** The payload of every PUBLISH received, when set (latency). */
  onPayload: ((buf: Buffer, start: number, end: number) => void) | null = null;

  static async connect(port: number, clientId: string, cleanSession = true): Promise<Client> {
    const socket = net.connect(port, "127.0.0.1");
    await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
    const c = new Client(socket);
    const acked = new Promise<void>((resolve, reject) => {
      c.onAck = (type) => type === PacketType.CONNACK && resolve();
      socket.once("close", () => reject(new Error(`${clientId}: closed before CONNACK`)));
    });
    c.send({ type: PacketType.CONNECT, protocolName: "MQTT", protocolLevel: 4, cleanStart: cleanSession, keepAlive: 0, clientId, will: null, username: null, password: null, properties: {} });
    await acked;
    c.onAck = null;
    return c;
  }

  send(p: Packet): boolean {
    return this.socket.write(encodePacket(p, 4));
  }

  private read(data: Buffer): void {
    let buf = this.pending.length > 0 ? Buffer.concat([this.pending, data]) : data;
    let at = 0;
    while (at + 2 <= buf.length) {
      let length = 0;
      let mult = 1;
      let k = at + 1;
      let done = false;
      for (; k < buf.length && k < at + 5; k++) {
        length += (buf[k]! & 0x7f) * mult;
        mult *= 128;
        if ((buf[k]! & 0x80) === 0) {
          done = true;
          k++;
          break;
        }
      }
      if (!done || k + length > buf.length) break;
      const type = buf[at]! >> 4;
      if (type === PacketType.PUBLISH) {
        this.received++;
        const qos = (buf[at]! >> 1) & 3;
        if (this.onPayload !== null) {
          const topicLength = (buf[k]! << 8) | buf[k + 1]!;
          this.onPayload(buf, k + 2 + topicLength + (qos > 0 ? 2 : 0), k + length);
        }
        if (qos > 0) {
          const topicLength = (buf[k]! << 8) | buf[k + 1]!;
          this.onPublish?.(qos, (buf[k + 2 + topicLength]! << 8) | buf[k + 3 + topicLength]!);
        }
      } else if (this.onAck !== null) {
        this.onAck(type, length >= 2 ? (buf[k]! << 8) | buf[k + 1]! : 0);
      }
      at = k + length;
    }
    this.pending = at < buf.length ? Buffer.from(buf.subarray(at)) : Buffer.alloc(0);
  }

  close(): void {
    this.socket.destroy();
  }
}

async function subscribe(c: Client, topic: string, qos: 0 | 1): Promise<void> {
  const acked = new Promise<void>((resolve) => (c.onAck = (type) => type === PacketType.SUBACK && resolve()));
  c.send({ type: PacketType.SUBSCRIBE, packetId: 1, properties: {}, subscriptions: [{ filter: topic, qos, noLocal: false, retainAsPublished: false, retainHandling: 0 }] });
  await acked;
  c.onAck = null;
}

/** Writes `batch` as fast as the socket takes it until `until` (ms since the epoch). */
async function blast(pub: Client, batch: Buffer, until: number): Promise<void> {
  while (Date.now() < until) {
    if (!pub.socket.write(batch)) await new Promise((r) => pub.socket.once("drain", r));
  }
}

/** Waits until the subscribers stop receiving (what is queued still arrives), at most 2 s. */
async function settle(subs: Client[]): Promise<void> {
  const total = () => subs.reduce((n, s) => n + s.received, 0);
  const sent = Date.now();
  let last = -1;
  while (total() !== last && Date.now() - sent < 2000) {
    last = total();
    await Bun.sleep(100);
  }
}

/** QoS 0 from one publisher to `fanout` subscribers: deliveries counted by all of them per second. */
async function qos0(port: number, size: number, fanout: number): Promise<number> {
  const subs: Client[] = [];
  for (let i = 0; i < fanout; i++) {
    const sub = await Client.connect(port, `bench-sub-${i}`);
    await subscribe(sub, "bench/t", 0);
    subs.push(sub);
  }
  const pub = await Client.connect(port, "bench-pub");
  const frame = encodePacket({ type: PacketType.PUBLISH, dup: false, qos: 0, retain: false, topic: "bench/t", packetId: 0, properties: {}, payload: Buffer.alloc(size, 0x61) }, 4);
  const batch = Buffer.concat(Array.from({ length: fanout > 1 ? 4 : 64 }, () => frame));
  await blast(pub, batch, Date.now() + 1000); // one second of warm-up (the server's JIT), not counted
  await settle(subs);
  for (const s of subs) s.received = 0;
  const began = Date.now();
  await blast(pub, batch, began + DURATION_S * 1000);
  await settle(subs);
  const rate = subs.reduce((n, s) => n + s.received, 0) / ((Date.now() - began) / 1000);
  pub.close();
  for (const s of subs) s.close();
  return rate;
}

async function qos1(port: number): Promise<number> {
  const sub = await Client.connect(port, "bench-sub1");
  sub.onPublish = (_qos, id) => sub.send({ type: PacketType.PUBACK, packetId: id, reasonCode: 0, properties: {} });
  await subscribe(sub, "bench/q", 1);
  const pub = await Client.connect(port, "bench-pub1");
  const payload = Buffer.alloc(128, 0x62);
  let nextId = 1;
  let inFlight = 0;
  let acked = 0;
  const end = Date.now() + DURATION_S * 1000;
  let wake: (() => void) | null = null;
  pub.onAck = (type) => {
    if (type !== PacketType.PUBACK) return;
    inFlight--;
    acked++;
    wake?.();
  };
  const started = Date.now();
  while (Date.now() < end) {
    while (inFlight < 100) {
      pub.send({ type: PacketType.PUBLISH, dup: false, qos: 1, retain: false, topic: "bench/q", packetId: nextId, properties: {}, payload });
      nextId = nextId === 65535 ? 1 : nextId + 1;
      inFlight++;
    }
    await new Promise<void>((r) => {
      wake = r;
      setTimeout(r, 50);
    });
  }
  const rate = Math.min(acked, sub.received) / ((Date.now() - started) / 1000);
  pub.close();
  sub.close();
  return rate;
}

const LATENCY_RATE = 2000;

/** Publish → deliver latency at a paced rate: the send time (performance.now(), this process) travels in the payload. */
async function latency(port: number): Promise<{ p50: number; p99: number; p999: number; max: number }> {
  const sub = await Client.connect(port, "bench-lat-sub");
  const samples: number[] = [];
  let counting = false;
  sub.onPayload = (buf, start) => {
    if (counting) samples.push(performance.now() - buf.readDoubleLE(start));
  };
  await subscribe(sub, "bench/lat", 0);
  const pub = await Client.connect(port, "bench-lat-pub");
  const payload = Buffer.alloc(128, 0x63);
  const send = () => {
    payload.writeDoubleLE(performance.now(), 0);
    pub.send({ type: PacketType.PUBLISH, dup: false, qos: 0, retain: false, topic: "bench/lat", packetId: 0, properties: {}, payload });
  };
  // Paced: every millisecond tick sends what the schedule says is due (2 per ms at 2000/s).
  const run = async (ms: number) => {
    const began = performance.now();
    let sent = 0;
    while (performance.now() - began < ms) {
      const due = Math.floor(((performance.now() - began) / 1000) * LATENCY_RATE);
      while (sent < due) {
        send();
        sent++;
      }
      await Bun.sleep(1);
    }
  };
  await run(500); // warm-up
  counting = true;
  await run(DURATION_S * 1000);
  await Bun.sleep(200);
  counting = false;
  pub.close();
  sub.close();
  samples.sort((a, b) => a - b);
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(samples.length * q))] ?? NaN;
  return { p50: at(0.5), p99: at(0.99), p999: at(0.999), max: samples.at(-1) ?? NaN };
}

const STORM_IN_FLIGHT = 200;
const STORM_BOUND_MS = 60_000;

/** A connect storm: clients with a session (clean session = false), 200 CONNECTs in flight at a time. */
async function connectStorm(port: number): Promise<{ perSecond: number; connected: number; ms: number }> {
  const clients: Client[] = [];
  let next = 0;
  let failed = 0;
  const began = Date.now();
  const worker = async () => {
    while (next < STORM_CLIENTS && Date.now() - began < STORM_BOUND_MS) {
      const id = next++;
      try {
        clients.push(await Client.connect(port, `storm-${id}`, false));
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: STORM_IN_FLIGHT }, worker));
  const ms = Date.now() - began;
  for (const c of clients) c.close();
  if (failed > 0) console.log(`  connect storm: ${failed} clients failed`);
  return { perSecond: clients.length / (ms / 1000), connected: clients.length, ms };
}

function rss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

async function idleMemory(server: Running): Promise<number> {
  await Bun.sleep(300);
  const before = rss(server.pid);
  const clients: Client[] = [];
  for (let i = 0; i < IDLE_CLIENTS; i++) clients.push(await Client.connect(server.port, `idle-${i}`));
  await Bun.sleep(3000); // idle: nothing sent or received for a while
  const after = rss(server.pid);
  for (const c of clients) c.close();
  return (after - before) / IDLE_CLIENTS;
}

process.on("SIGINT", () => {
  killAll();
  process.exit(130);
});

if (EXISTING_PORT > 0) {
  // Against a server already running (under a profiler, a tracer): the throughput scenarios, the connect storm, the latency.
  if (ONLY.includes("qos0")) for (const size of SIZES) console.log(`qos0 1:1 ${size} B: ${((await qos0(EXISTING_PORT, size, 1)) / 1000).toFixed(1)}k msgs/s`);
  if (ONLY.includes("fanout")) for (const size of SIZES) console.log(`qos0 1:100 ${size} B: ${((await qos0(EXISTING_PORT, size, 100)) / 1000).toFixed(1)}k deliveries/s`);
  if (ONLY.includes("qos1")) console.log(`qos1: ${((await qos1(EXISTING_PORT)) / 1000).toFixed(1)}k msgs/s`);
  if (ONLY.includes("connect")) console.log(`connect storm: ${((await connectStorm(EXISTING_PORT)).perSecond / 1000).toFixed(1)}k CONNACKs/s`);
  if (ONLY.includes("latency")) {
    const r = await latency(EXISTING_PORT);
    const ms = (v: number) => `${v.toFixed(2)} ms`;
    console.log(`latency at ${LATENCY_RATE} msgs/s: p50 ${ms(r.p50)}, p99 ${ms(r.p99)}, p99.9 ${ms(r.p999)}, max ${ms(r.max)}`);
  }
  process.exit(0);
}

/** One measurement: a name and how to take it on a fresh server. */
interface Scenario {
  name: string;
  run(server: Running): Promise<number>;
  /** How the median is shown. */
  show(v: number): string;
  /** Taken in round 1 only (slow, or not noisy). */
  once?: boolean;
}

const k = (v: number) => (Number.isNaN(v) ? "–" : v >= 100_000 ? `${(v / 1000).toFixed(0)}k` : `${(v / 1000).toFixed(1)}k`);
const msFmt = (v: number) => (Number.isNaN(v) ? "–" : `${v.toFixed(2)} ms`);
const scenarios: Scenario[] = [];
let latencyTail = "";
if (ONLY.includes("qos0")) for (const size of SIZES) scenarios.push({ name: `QoS 0 1:1 ${size} B msgs/s`, run: (s) => qos0(s.port, size, 1), show: k });
if (ONLY.includes("fanout")) for (const size of SIZES) scenarios.push({ name: `QoS 0 1:100 ${size} B deliveries/s`, run: (s) => qos0(s.port, size, 100), show: k });
if (ONLY.includes("qos1")) scenarios.push({ name: "QoS 1 1:1 128 B msgs/s (100 in flight)", run: (s) => qos1(s.port), show: k });
if (ONLY.includes("latency")) {
  // Both percentiles come from one run: the second scenario reads what the first measured.
  let last = { p50: NaN, p99: NaN, p999: NaN, max: NaN };
  scenarios.push({ name: `latency p50 (${LATENCY_RATE} msgs/s)`, run: async (s) => {
    last = await latency(s.port);
    // Each run's tail in its round's line, to tell a server's own stalls from the machine's (those hit every server).
    latencyTail = `p99 ${msFmt(last.p99)}, p99.9 ${msFmt(last.p999)}, max ${msFmt(last.max)}`;
    return last.p50;
  }, show: msFmt });
  scenarios.push({ name: `latency p99 (${LATENCY_RATE} msgs/s)`, run: async () => last.p99, show: msFmt });
}
if (ONLY.includes("connect")) scenarios.push({ name: `connect storm (${STORM_CLIENTS} clients with a session) CONNACKs/s`, run: async (s) => {
  const r = await connectStorm(s.port);
  if (r.connected < STORM_CLIENTS) console.log(`  connect storm: only ${r.connected} of ${STORM_CLIENTS} within ${STORM_BOUND_MS / 1000} s`);
  return r.perSecond;
}, show: k, once: true });
if (ONLY.includes("idle")) scenarios.push({ name: "memory per idle connection", run: (s) => idleMemory(s), show: (v) => (Number.isNaN(v) ? "–" : `${(v / 1024).toFixed(1)} KiB`), once: true });

const ROUNDS = Number(flag("rounds", "3"));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const results = new Map<Kind, Map<string, number[]>>(SERVERS.map((kind) => [kind, new Map(scenarios.map((s) => [s.name, []]))]));
for (let round = 0; round < ROUNDS; round++) {
  // Alternate the order so drift on a shared machine hits every server alike.
  const order = round % 2 === 0 ? SERVERS : [...SERVERS].reverse();
  for (const kind of order) {
    const line: string[] = [];
    for (const scenario of scenarios) {
      if (scenario.once && round > 0) continue;
      const r = results.get(kind)!.get(scenario.name)!;
      // The p99 line reads the latency run just made (same server).
      if (scenario.name.startsWith("latency p99")) {
        r.push(await scenario.run(null as unknown as Running));
        continue;
      }
      const server = await start(kind);
      try {
        r.push(await scenario.run(server));
        line.push(`${scenario.name}: ${scenario.show(r.at(-1)!)}`);
        if (scenario.name.startsWith("latency p50")) line.push(latencyTail);
      } catch (error) {
        console.log(`${kind} ${scenario.name} failed: ${(error as Error).message}`);
      } finally {
        await server.stop();
      }
    }
    console.log(`round ${round + 1}: ${kind}: ${line.join(", ")}`);
  }
}
const name = (kind: Kind) => (kind === "nats" ? "nats-server 2.9.10" : kind === "mosquitto" ? "Mosquitto 2.0" : "natter");
console.log(`\nMQTT 3.1.1, ${DURATION_S} s per run, median of ${ROUNDS} rounds (npm run bench:mqtt -- ${args.join(" ")}):\n`);
console.log(`| | ${SERVERS.map(name).join(" | ")} |`);
console.log(`|---|${SERVERS.map(() => "---").join("|")}|`);
for (const scenario of scenarios) {
  console.log(`| ${scenario.name} | ${SERVERS.map((kind) => scenario.show(median(results.get(kind)!.get(scenario.name)!))).join(" | ")} |`);
}
