// Free ports for test servers. A port from listen(0) comes from the kernel's ephemeral range, the same range
// every outgoing connection takes its source port from: on a busy machine (many clients connecting while
// tests start servers) such a port is often taken again between "free" and the server's bind. Ports are
// picked at random below that range instead, where only a listener can take them, and each is probed (TCP,
// and UDP for the cluster's gossip on the same number) before it is handed out.
// No vitest import: the fuzzer and the bench scripts use this outside vitest too.
import dgram from "node:dgram";
import { readFileSync } from "node:fs";
import net from "node:net";

const HOST = "127.0.0.1";
const LOWEST = 20_000;

/** The first port of the ephemeral range (32768 on Linux by default). */
function ephemeralStart(): number {
  try {
    const first = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    if (Number.isInteger(first) && first > LOWEST + 1000) return first;
  } catch {}
  return 32_768;
}

const HIGHEST = ephemeralStart(); // exclusive

function tcpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once("error", () => resolve(false));
    srv.listen(port, HOST, () => srv.close(() => resolve(true)));
  });
}

function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket("udp4");
    sock.unref();
    sock.once("error", () => {
      sock.close();
      resolve(false);
    });
    sock.bind(port, HOST, () => sock.close(() => resolve(true)));
  });
}

/** A kernel-chosen port (the fallback when the range below the ephemeral ports seems full). */
function ephemeralPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, HOST, () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

const handedOut = new Set<number>();

/** A port that was free a moment ago (TCP and UDP), not one this process handed out before. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = LOWEST + Math.floor(Math.random() * (HIGHEST - LOWEST));
    if (handedOut.has(port)) continue;
    if ((await tcpFree(port)) && (await udpFree(port))) {
      handedOut.add(port);
      return port;
    }
  }
  return ephemeralPort();
}

/** `n` distinct free ports. */
export async function freePorts(n: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < n) {
    const port = await freePort();
    if (!ports.includes(port)) ports.push(port);
  }
  return ports;
}
