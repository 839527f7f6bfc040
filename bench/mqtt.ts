// MQTT side by side: natter, nats-server 2.9.10 (its MQTT 3.1.1) and Mosquitto 2.0, each started fresh on
// free ports for each run, driven by one load generator for all (this Bun script, raw MQTT 3.1.1 over TCP,
// the packet codec of src/mqtt). Scenarios:
//   qos0-1:1   one publisher, one subscriber, QoS 0; throughput = messages the subscriber counted / time
//   qos1-1:1   the same at QoS 1: the publisher keeps 100 messages in flight (PUBACK frees a slot), the
//              subscriber acknowledges every message
//   idle-mem   resident memory grown per idle MQTT connection (1000 clients connected, after CONNACK)
// Usage: npm run bench:mqtt [-- --duration 3 --size 128 --servers natter,nats,mosquitto]
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
const SIZE = Number(flag("size", "128"));
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

  static async connect(port: number, clientId: string): Promise<Client> {
    const socket = net.connect(port, "127.0.0.1");
    await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
    const c = new Client(socket);
    const acked = new Promise<void>((resolve) => (c.onAck = (type) => type === PacketType.CONNACK && resolve()));
    c.send({ type: PacketType.CONNECT, protocolName: "MQTT", protocolLevel: 4, cleanStart: true, keepAlive: 0, clientId, will: null, username: null, password: null, properties: {} });
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

async function qos0(port: number): Promise<number> {
  const sub = await Client.connect(port, "bench-sub");
  await subscribe(sub, "bench/t", 0);
  const pub = await Client.connect(port, "bench-pub");
  const frame = encodePacket({ type: PacketType.PUBLISH, dup: false, qos: 0, retain: false, topic: "bench/t", packetId: 0, properties: {}, payload: Buffer.alloc(SIZE, 0x61) }, 4);
  const batch = Buffer.concat(Array.from({ length: 64 }, () => frame));
  // One second of warm-up (the server's JIT), not counted.
  const warm = Date.now() + 1000;
  while (Date.now() < warm) {
    if (!pub.socket.write(batch)) await new Promise((r) => pub.socket.once("drain", r));
  }
  await Bun.sleep(200);
  sub.received = 0;
  const end = Date.now() + DURATION_S * 1000;
  while (Date.now() < end) {
    if (!pub.socket.write(batch)) await new Promise((r) => pub.socket.once("drain", r));
  }
  const sent = Date.now();
  // Count until the subscriber stops receiving (what is queued still arrives) or 2 s passed.
  let last = -1;
  while (sub.received !== last && Date.now() - sent < 2000) {
    last = sub.received;
    await Bun.sleep(100);
  }
  const rate = sub.received / ((Date.now() - (end - DURATION_S * 1000)) / 1000);
  pub.close();
  sub.close();
  return rate;
}

async function qos1(port: number): Promise<number> {
  const sub = await Client.connect(port, "bench-sub1");
  sub.onPublish = (_qos, id) => sub.send({ type: PacketType.PUBACK, packetId: id, reasonCode: 0, properties: {} });
  await subscribe(sub, "bench/q", 1);
  const pub = await Client.connect(port, "bench-pub1");
  const payload = Buffer.alloc(SIZE, 0x62);
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
  console.log(`qos0 ${(await qos0(EXISTING_PORT) / 1000).toFixed(1)}k msgs/s, qos1 ${(await qos1(EXISTING_PORT) / 1000).toFixed(1)}k msgs/s`);
  process.exit(0);
}

const ROUNDS = Number(flag("rounds", "3"));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const results = new Map<Kind, { qos0: number[]; qos1: number[]; idle: number[] }>(SERVERS.map((k) => [k, { qos0: [], qos1: [], idle: [] }]));
for (let round = 0; round < ROUNDS; round++) {
  // Alternate the order so drift on a shared machine hits every server alike.
  const order = round % 2 === 0 ? SERVERS : [...SERVERS].reverse();
  for (const kind of order) {
    const r = results.get(kind)!;
    for (const [name, scenario] of [["qos0", qos0], ["qos1", qos1]] as const) {
      const server = await start(kind);
      try {
        r[name].push(await scenario(server.port));
      } catch (error) {
        console.log(`${kind} ${name} failed: ${(error as Error).message}`);
      } finally {
        await server.stop();
      }
    }
    if (round === 0) {
      const server = await start(kind);
      try {
        r.idle.push(await idleMemory(server));
      } finally {
        await server.stop();
      }
    }
    console.log(`round ${round + 1}: ${kind} qos0 ${(r.qos0.at(-1)! / 1000).toFixed(1)}k qos1 ${(r.qos1.at(-1)! / 1000).toFixed(1)}k`);
  }
}
console.log(`\nMQTT 3.1.1, ${SIZE} B payloads, ${DURATION_S} s per run, median of ${ROUNDS} rounds (npm run bench:mqtt -- --duration ${DURATION_S} --size ${SIZE} --rounds ${ROUNDS}):\n`);
console.log("| server | QoS 0 1:1 msgs/s | QoS 1 1:1 msgs/s (100 in flight) | memory per idle connection |");
console.log("|---|---|---|---|");
for (const kind of SERVERS) {
  const r = results.get(kind)!;
  console.log(`| ${kind === "nats" ? "nats-server 2.9.10" : kind === "mosquitto" ? "Mosquitto 2.0" : "natter"} | ${(median(r.qos0) / 1000).toFixed(0)}k | ${(median(r.qos1) / 1000).toFixed(1)}k | ${(median(r.idle) / 1024).toFixed(1)} KiB |`);
}
