// A raw MQTT client for protocol tests: sends exact bytes, reads packets as the codec decodes them,
// and tells when the server closed the connection. Plus a Mosquitto 2.0 broker on a free port, so the
// same protocol test can show what another implementation does where the spec leaves no choice.
import net from "node:net";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll } from "vitest";
import { PacketFramer, decodePacket } from "../../src/mqtt/decode.ts";
import { encodePacket } from "../../src/mqtt/encode.ts";
import { PacketType, type ConnectPacket, type Packet } from "../../src/mqtt/packets.ts";
import { freePort } from "../harness/server.ts";

export class RawMqtt {
  readonly packets: Packet[] = [];
  closed = false;
  private readonly framer = new PacketFramer(1 << 24);

  private constructor(
    readonly socket: net.Socket,
    public level: number,
  ) {
    socket.on("data", (data: Buffer) => {
      try {
        this.framer.feed(data, (first, buf, start, end) => this.packets.push(decodePacket(first, buf, start, end, this.level)));
      } catch (error) {
        this.packets.push({ type: 0, error } as unknown as Packet);
      }
    });
    socket.on("close", () => (this.closed = true));
    socket.on("error", () => (this.closed = true));
  }

  static async connect(port: number, level = 4): Promise<RawMqtt> {
    const socket = net.connect(port, "127.0.0.1");
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const raw = new RawMqtt(socket, level);
    open.add(raw);
    return raw;
  }

  send(bytes: Buffer | number[]): void {
    this.socket.write(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes));
  }

  sendPacket(p: Packet): void {
    this.send(encodePacket(p, this.level));
  }

  /** CONNECT with this client's level and the given fields; waits for CONNACK. */
  async handshake(fields: Partial<ConnectPacket> = {}): Promise<Packet> {
    this.sendPacket(connectPacket(this.level, fields));
    return this.next(PacketType.CONNACK);
  }

  /** The next packet of `type` (earlier ones of other types are skipped). */
  async next(type: number, ms = 5000): Promise<Packet> {
    const deadline = Date.now() + ms;
    for (;;) {
      const k = this.packets.findIndex((p) => p.type === type);
      if (k >= 0) return this.packets.splice(0, k + 1).pop()!;
      if (Date.now() > deadline) throw new Error(`no packet of type ${type} within ${ms} ms (got ${this.packets.map((p) => p.type)}; closed=${this.closed})`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Every packet up to and including the first that `match` accepts (taken from the queue). */
  async until(match: (p: Packet) => boolean, ms = 5000): Promise<Packet[]> {
    const deadline = Date.now() + ms;
    for (;;) {
      const k = this.packets.findIndex(match);
      if (k >= 0) return this.packets.splice(0, k + 1);
      if (Date.now() > deadline) throw new Error(`no matching packet within ${ms} ms (got ${this.packets.map((p) => p.type)}; closed=${this.closed})`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async waitClosed(ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error(`connection still open after ${ms} ms`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

const open = new Set<RawMqtt>();
afterAll(() => {
  for (const raw of open) raw.close();
});

export function connectPacket(level: number, fields: Partial<ConnectPacket> = {}): ConnectPacket {
  return {
    type: PacketType.CONNECT, protocolName: "MQTT", protocolLevel: level, cleanStart: true, keepAlive: 0, clientId: "raw",
    will: null, username: null, password: null, properties: {}, ...fields,
  };
}

/** Whether Debian's mosquitto broker is installed (apt-get install mosquitto). */
export const mosquittoInstalled = spawnSync("sh", ["-c", "command -v mosquitto"]).status === 0;

export interface Mosquitto {
  port: number;
  stop(): Promise<void>;
}

/** Mosquitto 2.0 on a free port, anonymous clients allowed; stopped after the file. */
export async function startMosquitto(): Promise<Mosquitto> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), "natter-mosquitto-"));
  const conf = path.join(dir, "mosquitto.conf");
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`);
  const child: ChildProcess = spawn("mosquitto", ["-c", conf], { stdio: "ignore" });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, "127.0.0.1", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > deadline) throw new Error("mosquitto did not start");
    await new Promise((r) => setTimeout(r, 20));
  }
  const stop = async () => {
    child.kill("SIGKILL");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };
  mosquittos.add(stop);
  return { port, stop };
}

const mosquittos = new Set<() => Promise<void>>();
afterAll(async () => {
  await Promise.all([...mosquittos].map((stop) => stop()));
});
