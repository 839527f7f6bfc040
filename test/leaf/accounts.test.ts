// Leaf connections bound to accounts, as nats-server binds them: a remote carries its `account` (default
// $G), a hub binds an accepted leaf to the account of the user it authenticated as. Each link carries
// its account's interest and messages only: the same subject in another account never sees them.
// natter ↔ natter, natter leaf → nats-server hub and nats-server leaf → natter hub; and the hub's
// max_leafnodes per account, refused with nats-server's errors.
import { describe, expect, onTestFinished, test } from "vitest";
import { connect, StringCodec, type Msg, type NatsConnection } from "nats";
import { freePort } from "../harness/server.ts";
import { HAS_NATS_SERVER, logs, subject, waitForFlow } from "./helpers.ts";
import { HOST, startProc, waitFor, type Proc } from "./spawn.ts";

const sc = StringCodec();

/** Two accounts with one user each (user = password = the name). */
const accounts = (a: string, b: string) => `accounts { A { users [ { user: ${a}, password: ${a} } ] }, B { users [ { user: ${b}, password: ${b} } ] } }\n`;

async function user(proc: Proc, name: string): Promise<NatsConnection> {
  const nc = await connect({ servers: proc.url, user: name, pass: name, reconnect: false, timeout: 10_000 });
  onTestFinished(async () => {
    if (!nc.isClosed()) await nc.close().catch(() => {});
  });
  return nc;
}

interface Inbox {
  readonly msgs: Msg[];
  texts(): string[];
}

function inbox(nc: NatsConnection, subj: string): Inbox {
  const msgs: Msg[] = [];
  nc.subscribe(subj, { callback: (_err, m) => msgs.push(m) });
  return { msgs, texts: () => msgs.map((m) => sc.decode(m.data)) };
}

async function getJson(port: number, path: string): Promise<any> {
  const res = await fetch(`http://${HOST}:${port}${path}`);
  return res.json();
}

/**
 * One account's link between `leaf` and `hub` clients, with the other account's clients on both sides
 * subscribed to the same subject: messages cross both ways, and the other account sees none of them.
 */
async function checkIsolated(what: string, leaf: NatsConnection, hub: NatsConnection, others: NatsConnection[], detail: () => string): Promise<void> {
  await waitForFlow(leaf, hub, `${what}: leaf → hub`, 15_000, detail);
  await waitForFlow(hub, leaf, `${what}: hub → leaf`, 15_000, detail);
  const subj = subject("acc");
  const atHub = inbox(hub, subj);
  const atLeaf = inbox(leaf, subj);
  const leaked = others.map((nc) => inbox(nc, subj));
  await Promise.all([hub, leaf, ...others].map((nc) => nc.flush()));
  // The new subscriptions' interest crosses before the messages do (probes on fresh subjects, as above).
  await waitForFlow(leaf, hub, `${what}: leaf → hub again`, 15_000, detail);
  await waitForFlow(hub, leaf, `${what}: hub → leaf again`, 15_000, detail);
  leaf.publish(subj, sc.encode("up"));
  hub.publish(subj, sc.encode("down"));
  await Promise.all([leaf.flush(), hub.flush()]);
  await waitFor(`${what}: both messages on both sides`, () => atHub.msgs.length === 2 && atLeaf.msgs.length === 2, 10_000, detail);
  // Anything that leaked would have arrived by now: one more round trip over each link, then look.
  await waitForFlow(leaf, hub, `${what}: a last probe`, 15_000, detail);
  await waitForFlow(hub, leaf, `${what}: a last probe back`, 15_000, detail);
  await Promise.all(others.map((nc) => nc.flush()));
  expect(atHub.texts().sort()).toEqual(["down", "up"]);
  expect(atLeaf.texts().sort()).toEqual(["down", "up"]);
  for (const l of leaked) expect(l.texts()).toEqual([]);
}

describe("natter leaf with two remotes (accounts A and B) → natter hub", () => {
  test("each link carries its own account; B never sees A's messages on the same subject; /leafz shows the accounts", async () => {
    const hubHttp = await freePort();
    const leafHttp = await freePort();
    const hub = await startProc("natter", {
      name: "HUB",
      config: accounts("a", "b") + `leafnodes { listen: "${HOST}:{{leaf_port}}" }\n`,
      args: ["-m", String(hubHttp)],
    });
    const leaf = await startProc("natter", {
      name: "LEAF",
      config:
        accounts("la", "lb") +
        `leafnodes { reconnect: 1, remotes [\n` +
        `  { url: "nats-leaf://a:a@${HOST}:${hub.leafPort}", account: A }\n` +
        `  { url: "nats-leaf://${HOST}:${hub.leafPort}", user: b, password: b, account: "B" }\n` +
        `] }\n`,
      args: ["-m", String(leafHttp)],
    });
    const detail = logs(hub, leaf);
    const [ha, hb, la, lb] = await Promise.all([user(hub, "a"), user(hub, "b"), user(leaf, "la"), user(leaf, "lb")]);
    await checkIsolated("account A", la, ha, [hb, lb], detail);
    await checkIsolated("account B", lb, hb, [ha, la], detail);

    const [hubz, leafz, onlyA] = await Promise.all([getJson(hubHttp, "/leafz"), getJson(leafHttp, "/leafz"), getJson(hubHttp, "/leafz?acc=A")]);
    expect(hubz.leafs.map((l: any) => l.account).sort()).toEqual(["A", "B"]);
    expect(leafz.leafs.map((l: any) => l.account).sort()).toEqual(["A", "B"]);
    expect(onlyA.leafs.map((l: any) => l.account)).toEqual(["A"]);
    expect((await getJson(leafHttp, "/varz")).leaf.remotes.map((r: any) => r.local_account)).toEqual(["A", "B"]);
    expect(leaf.log()).toMatch(/Leafnode connection created for account: A/);
    expect(leaf.log()).toMatch(/Leafnode connection created for account: B/);
  });
});

describe.skipIf(!HAS_NATS_SERVER)("with nats-server", () => {
  test("natter leaf (remote account A) → nats-server hub with accounts (a user of A)", async () => {
    const hub = await startProc("nats-server", { name: "HUB", config: accounts("a", "b") + `leafnodes { listen: "${HOST}:{{leaf_port}}" }\n` });
    const leaf = await startProc("natter", {
      name: "LEAF",
      config: accounts("la", "lb") + `leafnodes { reconnect: 1, remotes [ { url: "nats-leaf://a:a@${HOST}:${hub.leafPort}", account: A } ] }\n`,
    });
    const [ha, hb, la, lb] = await Promise.all([user(hub, "a"), user(hub, "b"), user(leaf, "la"), user(leaf, "lb")]);
    await checkIsolated("account A", la, ha, [hb, lb], logs(hub, leaf));
  });

  test("nats-server leaf (remote account A, an A user's credentials) → natter hub with accounts", async () => {
    const hub = await startProc("natter", { name: "HUB", config: accounts("a", "b") + `leafnodes { listen: "${HOST}:{{leaf_port}}" }\n` });
    const leaf = await startProc("nats-server", {
      name: "LEAF",
      config: accounts("la", "lb") + `leafnodes { reconnect: 1, remotes [ { url: "nats-leaf://a:a@${HOST}:${hub.leafPort}", account: A } ] }\n`,
    });
    const [ha, hb, la, lb] = await Promise.all([user(hub, "a"), user(hub, "b"), user(leaf, "la"), user(leaf, "lb")]);
    await checkIsolated("account A", la, ha, [hb, lb], logs(hub, leaf));
    expect(hub.log()).toMatch(/Leafnode connection open from LEAF\S* for account: A/);
  });
});

describe("max_leafnodes", () => {
  const leafTo = (hub: Proc, creds: string) => `leafnodes { reconnect: 1, remotes [ { url: "nats-leaf://${creds}@${HOST}:${hub.leafPort}" } ] }\n`;

  test.each<[string, string, string]>([
    [
      "a user of the accounts block",
      `accounts { A { users [ { user: a, password: a } ], limits { max_leafnodes: 1 } } }\nleafnodes { listen: "${HOST}:{{leaf_port}}" }\n`,
      "maximum account active connections exceeded",
    ],
    [
      "a user of leafnodes.authorization",
      `accounts { A { limits { max_leafnodes: 1 } } }\nleafnodes { listen: "${HOST}:{{leaf_port}}", authorization { users [ { user: a, password: a, account: A } ] } }\n`,
      "Authorization Violation",
    ],
  ])("%s: a second leaf node of the account is refused", async (_what, hubConfig, error) => {
    const hub = await startProc("natter", { name: "HUB", config: hubConfig });
    const first = await startProc("natter", { name: "LEAF1", config: leafTo(hub, "a:a") });
    await waitFor("the first leaf to connect", () => first.log().includes("Leafnode connection created for account: $G"), 10_000, logs(hub, first));
    const second = await startProc("natter", { name: "LEAF2", config: leafTo(hub, "a:a") });
    const detail = logs(hub, first, second);
    await waitFor("the hub to refuse the second leaf", () => hub.log().includes(error) && second.log().includes(`Leafnode Error '${error}'`), 10_000, detail);
    expect(second.log()).not.toContain("Leafnode connection created for account");
    // The first one's place frees when it goes: the second one gets in on its next dial.
    await first.stop();
    await waitFor("the second leaf to connect once the first is gone", () => second.log().includes("Leafnode connection created for account: $G"), 15_000, detail);
  });
});

describe("allowed_connection_types on the hub", () => {
  const hubUsers = `authorization { users [
  { user: leafy, password: l, allowed_connection_types: ["LEAFNODE"] }
  { user: cli, password: c, allowed_connection_types: ["STANDARD"] }
] }
`;
  const kinds: Proc["kind"][] = HAS_NATS_SERVER ? ["natter", "nats-server"] : ["natter"];

  test.each(kinds)("%s hub: a LEAFNODE user links a leaf but is refused as a client; a STANDARD user the other way round", async (kind) => {
    const hub = await startProc(kind, { name: "HUB", config: hubUsers + `leafnodes { listen: "${HOST}:{{leaf_port}}" }\n` });
    const leaf = await startProc("natter", { name: "LEAF", config: `leafnodes { reconnect: 1, remotes [ { url: "nats-leaf://leafy:l@${HOST}:${hub.leafPort}" } ] }\n` });
    const atHub = await connect({ servers: hub.url, user: "cli", pass: "c", reconnect: false, timeout: 10_000 });
    const atLeaf = await connect({ servers: leaf.url, reconnect: false, timeout: 10_000 });
    onTestFinished(async () => {
      await Promise.all([atHub, atLeaf].map((nc) => nc.close().catch(() => {})));
    });
    await waitForFlow(atLeaf, atHub, "leaf → hub", 15_000, logs(hub, leaf));
    await expect(connect({ servers: hub.url, user: "leafy", pass: "l", reconnect: false, timeout: 10_000 })).rejects.toThrow(/Authorization Violation/i);
    const refused = await startProc("natter", { name: "LEAF2", config: `leafnodes { reconnect: 1, remotes [ { url: "nats-leaf://cli:c@${HOST}:${hub.leafPort}" } ] }\n` });
    await waitFor("the STANDARD user's leaf link refused", () => /Authorization Violation/i.test(refused.log()), 15_000, logs(hub, refused));
  });
});
