// A connection's log lines carry `ip:port - cid:N` as nats-server's do. A client that resets its socket before
// the server has read its address must not be logged as `undefined:undefined - cid:N`.
import net from "node:net";
import { expect, test } from "vitest";
import { startServer } from "../harness/server.ts";
import { waitFor } from "../harness/raw.ts";

/** Connects and resets at once (RST, not FIN): the server may accept a socket that is already gone. */
function connectAndReset(port: number): Promise<void> {
  return new Promise((done) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.on("connect", () => {
      socket.resetAndDestroy();
      done();
    });
    socket.on("error", () => done());
  });
}

test("connections reset right after connecting are logged with an address or none, never `undefined`", async () => {
  const server = await startServer({ debug: true });
  const tries = 200;
  for (let i = 0; i < tries; i += 20) await Promise.all(Array.from({ length: 20 }, () => connectAndReset(server.port)));
  // Every one of them is closed (and logged as closed) by the server.
  await waitFor(() => (server.log().match(/Client connection closed/g) ?? []).length >= tries, 10_000, "every close logged");
  const lines = server.log().split("\n").filter((l) => l.includes("Client connection"));
  expect(lines.filter((l) => l.includes("undefined"))).toEqual([]);
  for (const line of lines) {
    expect(line).toMatch(/\[DBG\] (\S+:\d+)? - cid:\d+ - Client connection (created|closed)/);
  }
});
