// Reliability under faults (issue 18): what a damaged store, a full disk or a kill -9 costs. Real server
// processes, the official clients, real files; the server is killed with SIGKILL through the harness.
import { appendFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { expect, test } from "vitest";
import { serverKind } from "../harness/server.ts";
import { connectJs, enc, startJs } from "./helpers.ts";

const natterOnly = test.skipIf(serverKind === "nats-server");

/** natter's segment files of a stream, in order. */
function segments(storeDir: string, stream: string): string[] {
  const dir = path.join(storeDir, "jetstream", "$G", "streams", stream, "msgs");
  return readdirSync(dir).filter((f) => f.endsWith(".seg")).sort((a, b) => parseInt(a) - parseInt(b)).map((f) => path.join(dir, f));
}

// Log format is natter's own: nats-server words its recovery warnings differently.
natterOnly("a store warning is logged once, as a warning", async () => {
  const server = await startJs();
  const c = await connectJs(server);
  await c.jsm.streams.add({ name: "WARN", subjects: ["warn.>"] });
  for (let i = 0; i < 3; i++) await c.js.publish("warn.x", enc(`m${i}`));
  await c.nc.close();
  await server.kill9();
  // A torn tail: half a record header after the last record.
  appendFileSync(segments(server.storeDir!, "WARN").at(-1)!, Buffer.from([9, 0, 0]));
  await server.restart();
  const lines = server.log().split("\n").filter((l) => l.includes("torn record header"));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toContain("[WRN]");
}, 30_000);
