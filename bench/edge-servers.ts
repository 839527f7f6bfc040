// The processes of the edge benches (edge-catchup.ts, edge-steady.ts): a natter or nats-server 2.9.10
// server started from a config file (`{{dir}}` is its own temporary directory), its CPU time, a free port.
// Kinds: natter (this checkout), natter-b (NATTER_B=<other checkout>/src/main.ts, for an A/B of a natter
// change), nats-server. CATCHUP_DEBUG=1 shows the servers' debug logs.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

export type Kind = "natter" | "natter-b" | "nats-server";

/** Linux's USER_HZ: /proc/<pid>/stat counts CPU time in these. */
const CLOCK_TICKS = 100;
const REPO = path.resolve(import.meta.dir, "..");
const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export async function waitFor<T>(what: string, check: () => Promise<T | null | false>, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check().catch(() => null);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface Server {
  port: number;
  /** CPU seconds (user + system) the running process used so far (Linux /proc), 0 when not running. */
  cpu(): number;
  start(): Promise<void>;
  kill(): Promise<void>;
}

export function server(kind: Kind, name: string, port: number, config: string): Server {
  const dir = mkdtempSync(path.join(os.tmpdir(), `natter-edge-bench-${name}-`));
  const conf = path.join(dir, "server.conf");
  writeFileSync(conf, config.replaceAll("{{dir}}", dir));
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  const s: Server = {
    port,
    cpu() {
      if (child?.pid === undefined) return 0;
      try {
        const stat = readFileSync(`/proc/${child.pid}/stat`, "utf8");
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
      } catch {
        return 0;
      }
    },
    async start() {
      const main = kind === "natter-b" ? process.env.NATTER_B ?? "" : path.join(REPO, "src/main.ts");
      const [cmd, argv] = kind !== "nats-server"
        ? [process.execPath, [main, "-c", conf, "-a", "127.0.0.1", "-p", String(port), "-n", name, ...(process.env.CATCHUP_DEBUG ? ["-D"] : [])]]
        : ["nats-server", ["-c", conf, "-a", "127.0.0.1", "-p", String(port), "-n", name, ...(process.env.CATCHUP_DEBUG ? ["-D"] : [])]];
      const c = spawn(cmd, argv, { stdio: process.env.CATCHUP_DEBUG ? ["ignore", "inherit", "inherit"] : "ignore" });
      child = c;
      children.add(c);
      exited = new Promise((r) => c.on("exit", () => r()));
      await waitFor(`${name} to listen`, () => new Promise<boolean>((resolve) => {
        const sock = net.connect({ host: "127.0.0.1", port }, () => { sock.destroy(); resolve(true); });
        sock.on("error", () => resolve(false));
      }), 20_000);
    },
    async kill() {
      if (child === null) return;
      child.kill("SIGKILL");
      await exited;
      children.delete(child);
      child = null;
    },
  };
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  return s;
}

