// The canary, in its own process so that its timings are the server's and not the fuzzer's (whose
// event loop is busy generating and checking cases): a responder and a requester connection; every
// interval a PING round trip and a request-reply round trip, each bounded. Reports one line each:
//   rtt <ms>            a round (the slower of the two round trips)
//   fail <message>      a round trip did not complete within the bound (then it exits)
// Started by engine.ts: bun test/fuzz/canary.ts <port> <interval ms> <bound ms>
import { NatsClient } from "./wire.ts";

const [port, intervalMs, boundMs] = process.argv.slice(2).map(Number) as [number, number, number];
const out = (line: string) => process.stdout.write(`${line}\n`);

const responder = new NatsClient(port, "zcanary.rsp", (f, client) => {
  if (f.subject === "zcanary.svc.x.y" && f.reply) void client.publish(f.reply, f.payload!);
});
const requester = new NatsClient(port, "zcanary.req");
try {
  await responder.start(10_000);
  await responder.conn.send("SUB zcanary.svc.x.y 2\r\n");
  if (!(await responder.ping(10_000))) throw new Error("canary responder not ready");
  await requester.start(10_000);
} catch (error) {
  out(`fail ${(error as Error).message}`);
  process.exit(1);
}
out("ready");
// The parent going away ends the canary too.
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();

let n = 0;
for (;;) {
  const t0 = performance.now();
  const pong = await requester.ping(boundMs);
  const t1 = performance.now();
  if (!pong) {
    out(`fail no PONG within ${boundMs} ms (connection ${requester.conn.closed ? "closed" : "open"})`);
    process.exit(1);
  }
  const token = `t${++n}`;
  const reply = await requester.request("zcanary.svc.x.y", token, boundMs);
  const t2 = performance.now();
  if (reply === null || reply.payload!.toString() !== token) {
    out(`fail no reply to a request within ${boundMs} ms (connections ${requester.conn.closed || responder.conn.closed ? "closed" : "open"})`);
    process.exit(1);
  }
  out(`rtt ${Math.max(t1 - t0, t2 - t1).toFixed(2)}`);
  await new Promise((r) => setTimeout(r, intervalMs));
}
