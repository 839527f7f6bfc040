// The protocol trace (-V) of a route: natter's binary route frames are traced in nats-server's route words
// with its `rid:` prefix — `RS+ <account> <subject> [<queue> <weight>]`, `RS- …`, `RMSG <account> <subject>
// [+ reply | |] [queues] <size>` and the payload read — so one grep finds route traffic of either server.
// The expected lines are what a cluster of two nats-server 2.9.10 traces for the same session (their route
// protocol is text, natter's binary: only the trace can be compared, so it is written down here).
import net from "node:net";
import { expect, test } from "vitest";
import { startCluster, waitFor } from "./spawn.ts";

function rawClient(port: number): { send(text: string): void; text(): string } {
  const socket = net.connect({ host: "127.0.0.1", port });
  let received = "";
  socket.on("data", (d: Buffer) => (received += d.toString("latin1")));
  return { send: (text) => socket.write(text), text: () => received };
}

/**
 * The route trace lines of a node about subject `foo`, after the `rid:N - ` prefix, on the route that carried
 * the message (two nodes that dial each other at once have two routes for a moment, and interest made then
 * goes over both until one is closed as a duplicate).
 */
function routeTraces(log: string): string[] {
  const lines = log.split("\n").filter((l) => l.includes("[TRC]") && / - rid:\d+ - /.test(l) && /\bfoo\b|MSG_PAYLOAD/.test(l));
  const rid = / - (rid:\d+) - /.exec(lines.find((l) => l.includes("RMSG")) ?? "")?.[1];
  return lines.filter((l) => rid === undefined || l.includes(` - ${rid} - `)).map((l) => l.replace(/^.*\[TRC\] \S+ - rid:\d+ - /, ""));
}

test("route frames are traced as nats-server traces route ops", async () => {
  const [a, b] = await startCluster(2, { extraArgs: ["-V"] });
  const subscriber = rawClient(a!.port);
  subscriber.send('CONNECT {"verbose":false}\r\nSUB foo 1\r\nSUB foo q 2\r\nPING\r\n');
  await waitFor("the interest at the other node", () => b!.log().includes("<<- [RS+ $G foo q 1]"), 10_000, () => b!.log());
  const publisher = rawClient(b!.port);
  publisher.send('CONNECT {"verbose":false}\r\nPUB foo r 2\r\nhi\r\nPING\r\n');
  await waitFor("the message", () => (subscriber.text().match(/MSG foo/g) ?? []).length === 2, 10_000, () => a!.log() + b!.log());
  subscriber.send("UNSUB 1\r\nPING\r\n");
  await waitFor("the interest gone", () => b!.log().includes("<<- [RS- $G foo]"), 10_000, () => b!.log());
  expect(routeTraces(a!.log())).toEqual(["->> [RS+ $G foo]", "->> [RS+ $G foo q 1]", "<<- [RMSG $G foo + r q 2]", '<<- MSG_PAYLOAD: ["hi"]', "->> [RS- $G foo]"]);
  expect(routeTraces(b!.log())).toEqual(["<<- [RS+ $G foo]", "<<- [RS+ $G foo q 1]", "->> [RMSG $G foo + r q 2]", "<<- [RS- $G foo]"]);
  expect(a!.log()).toMatch(/\[TRC\] 127\.0\.0\.1:\d+ - rid:\d+ - ->> \[RS\+ \$G foo\]\n/);
});
