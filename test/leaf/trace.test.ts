// The protocol trace (-DV) of a leaf node link, in nats-server's format and prefix (`ip:port - lid:N - `):
// LS+/LS- and LMSG (with its queue groups, as finally sent) each one line, payloads as MSG_PAYLOAD, the
// interest a hub drops as DELSUB on the leaf. The same scenario runs with two natters and with two
// nats-servers (the reference); the lines about subject `foo` must be the same, in the same order.
import net from "node:net";
import { describe, expect, test } from "vitest";
import { HAS_NATS_SERVER, logs } from "./helpers.ts";
import { HOST, startProc, waitFor, type Kind, type Proc } from "./spawn.ts";

/** A raw client: sends `text` once the server's INFO came. */
async function rawClient(port: number): Promise<{ send(text: string): void; text(): string; close(): void }> {
  const socket = net.connect({ host: HOST, port });
  let received = "";
  socket.on("data", (d: Buffer) => (received += d.toString("latin1")));
  await waitFor("INFO", () => received.startsWith("INFO "), 5_000);
  return { send: (text) => socket.write(text), text: () => received, close: () => socket.destroy() };
}

/** The trace lines of the leaf link about `foo`, without the time and the link's address. */
function fooTraces(proc: Proc): string[] {
  return proc
    .log()
    .split("\n")
    .filter((l) => l.includes("[TRC]") && / - lid:\d+ - /.test(l) && /\bfoo\b|MSG_PAYLOAD/.test(l))
    .map((l) => l.replace(/^.*\[TRC\] \S+ - lid:\d+ - /, ""));
}

async function scenario(kind: Kind): Promise<{ hub: string[]; leaf: string[]; prefixes: string[] }> {
  const hub = await startProc(kind, { name: "HUB", config: `leafnodes { listen: "${HOST}:{{leaf_port}}" }\n`, trace: true });
  const leaf = await startProc(kind, { name: "LEAF", config: `leafnodes { remotes [ { url: "nats-leaf://${HOST}:${hub.leafPort}" } ] }\n`, trace: true });
  await waitFor("the link", () => / - lid:\d+ - .*Leafnode connection created/.test(hub.log()), 10_000, logs(hub, leaf));
  const subscriber = await rawClient(hub.port);
  subscriber.send('CONNECT {"verbose":false}\r\nSUB foo 1\r\nSUB foo q 2\r\nPING\r\n');
  await waitFor("the interest at the leaf", () => leaf.log().includes("<<- [LS+ foo q 1]"), 10_000, logs(hub, leaf));
  const publisher = await rawClient(leaf.port);
  publisher.send('CONNECT {"verbose":false}\r\nPUB foo 2\r\nhi\r\nPUB foo r 2\r\nyo\r\nPING\r\n');
  await waitFor("both messages", () => (subscriber.text().match(/MSG foo/g) ?? []).length === 4, 10_000, logs(hub, leaf));
  subscriber.send("UNSUB 1\r\nUNSUB 2\r\nPING\r\n");
  await waitFor("the interest gone at the leaf", () => leaf.log().includes("<-> [DELSUB foo q]"), 10_000, logs(hub, leaf));
  subscriber.close();
  publisher.close();
  const prefixes = [hub, leaf].flatMap((p) => p.log().split("\n").filter((l) => l.includes("[TRC]") && l.includes("[LS+ foo]")));
  return { hub: fooTraces(hub), leaf: fooTraces(leaf), prefixes };
}

describe("leaf node link trace", () => {
  test.runIf(HAS_NATS_SERVER)("natter traces a leaf link line for line as nats-server does", async () => {
    const reference = await scenario("nats-server");
    const natter = await scenario("natter");
    expect(reference.hub).toEqual(["->> [LS+ foo]", "->> [LS+ foo q 1]", "<<- [LMSG foo | q 2]", '<<- MSG_PAYLOAD: ["hi"]', "<<- [LMSG foo + r q 2]", '<<- MSG_PAYLOAD: ["yo"]', "->> [LS- foo]", "->> [LS- foo q]"]);
    expect(natter.hub).toEqual(reference.hub);
    expect(natter.leaf).toEqual(reference.leaf);
    for (const line of [...natter.prefixes, ...reference.prefixes]) expect(line).toMatch(/\[TRC\] 127\.0\.0\.1:\d+ - lid:\d+ - [<-]/);
  });
});
