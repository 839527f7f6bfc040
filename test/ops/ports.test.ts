// A port already taken ends the start with nats-server's line for that listener, naming the address, and exit
// code 1: the client port, the monitoring port (a second server on the same -m must not share it) and, for
// natter, the WebSocket, route and leaf node ports. natter says it in one line, before announcing anything.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { freePort, serverKind, startServer } from "../harness/server.ts";
import { spawnNatter } from "./proc.ts";

const HOST = "127.0.0.1";
const command = serverKind === "nats-server" ? [process.env.NATS_SERVER_BIN ?? "nats-server"] : undefined;

/** Runs a second server with these flags and returns its output once it has exited (code 1 expected). */
async function refused(args: string[]): Promise<string> {
  const p = spawnNatter(["-a", HOST, ...args], { command });
  const exit = await p.waitForExit(15_000);
  expect(exit.code).toBe(1);
  return p.output();
}

/** natter's whole output for a refused port: one line, no start-up lines before it. */
function expectOneLine(output: string, line: string): void {
  if (serverKind === "natter") expect(output.trimEnd().split("\n")).toEqual([`natter: ${line}`]);
  else expect(output).toContain(line);
}

describe("a port in use", () => {
  test("the client port: `Error listening on port: <host:port>` and exit 1", async () => {
    const first = await startServer();
    const output = await refused(["-p", String(first.port)]);
    expectOneLine(output, `Error listening on port: ${HOST}:${first.port}, "listen tcp ${HOST}:${first.port}: bind: address already in use"`);
  });

  test("the monitoring port of a running server is refused, not shared", async () => {
    const httpPort = await freePort();
    const first = await startServer({ args: ["-m", String(httpPort)] });
    const output = await refused(["-p", String(await freePort()), "-m", String(httpPort)]);
    expectOneLine(output, `Can't start monitoring: can't listen to the monitor port: listen tcp ${HOST}:${httpPort}: bind: address already in use`);
    // The first server still answers on its monitoring port, and it alone does.
    const varz = (await (await fetch(`http://${HOST}:${httpPort}/varz`)).json()) as { port: number };
    expect(varz.port).toBe(first.port);
  });

  test.runIf(serverKind === "natter")("the WebSocket, route and leaf node ports", async () => {
    const first = await startServer();
    const taken = first.port;
    const others = ["-p", String(await freePort())];
    expectOneLine(await refused([...others, "--ws_host", HOST, "--ws_port", String(taken)]), `Unable to listen for websocket connections: listen tcp ${HOST}:${taken}: bind: address already in use`);
    expectOneLine(await refused([...others, "--cluster", `nats://${HOST}:${taken}`]), `Error listening on router port: ${taken} - listen tcp ${HOST}:${taken}: bind: address already in use`);
    expectOneLine(await refused([...others, "--leafnodes_listen", `${HOST}:${taken}`]), `Error listening on leafnode port: ${taken} - listen tcp ${HOST}:${taken}: bind: address already in use`);
  });

  test.runIf(serverKind === "natter")("with JetStream on, nothing is logged (or stored) before the refusal", async () => {
    const first = await startServer();
    const store = mkdtempSync(path.join(os.tmpdir(), "natter-ports-"));
    try {
      expectOneLine(await refused(["-p", String(first.port), "-js", "-sd", store]), `Error listening on port: ${HOST}:${first.port}, "listen tcp ${HOST}:${first.port}: bind: address already in use"`);
    } finally {
      rmSync(store, { recursive: true, force: true });
    }
  });
});
