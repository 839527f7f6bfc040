// A credentials file in a remote: natter as a leaf of a nats-server hub in operator mode (resolver:
// MEMORY with the account preloaded). The operator, account and user JWTs and the creds file are made
// at test time with nats-io's JWT library; the leaf sends the user JWT in CONNECT and signs the hub's
// nonce with the user's seed. A user the hub cannot trust (signed by an account it does not know) is
// refused, and a malformed creds file stops natter at start.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, onTestFinished, test } from "vitest";
import { connect, credsAuthenticator, type NatsConnection } from "nats";
import { encodeAccount, encodeOperator, encodeUser, fmtCreds } from "@nats-io/jwt";
import { createAccount, createOperator, createUser } from "@nats-io/nkeys";
import { HAS_NATS_SERVER, client, logs, waitForLink } from "./helpers.ts";
import { HOST, startProc, waitFor } from "./spawn.ts";

let dir: string;
let hubConfig: string;
let goodCreds: string;
let strangerCreds: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "natter-leaf-creds-"));
  const operator = createOperator();
  const account = createAccount();
  const user = createUser();
  const operatorJwt = await encodeOperator("O", operator);
  // Unlimited, as nsc's defaults: the library's own default allows no connections.
  const limits = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };
  const accountJwt = await encodeAccount("A", account, { limits } as Parameters<typeof encodeAccount>[2], { signer: operator });
  const userJwt = await encodeUser("leaf", user, account);
  goodCreds = path.join(dir, "leaf.creds");
  writeFileSync(goodCreds, fmtCreds(userJwt, user));
  // A user of an account the hub was never told about.
  const otherAccount = createAccount();
  const stranger = createUser();
  strangerCreds = path.join(dir, "stranger.creds");
  writeFileSync(strangerCreds, fmtCreds(await encodeUser("stranger", stranger, otherAccount), stranger));
  hubConfig = [
    `operator: ${operatorJwt}`,
    "resolver: MEMORY",
    `resolver_preload: { ${account.getPublicKey()}: ${accountJwt} }`,
    `leafnodes { listen: "${HOST}:{{leaf_port}}" }`,
    "",
  ].join("\n");
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const remote = (hubLeafPort: number, creds: string) =>
  `leafnodes { reconnect: 1, remotes [ { url: "nats-leaf://${HOST}:${hubLeafPort}", credentials: "${creds}" } ] }\n`;

async function credsClient(url: string, creds: string): Promise<NatsConnection> {
  const nc = await connect({ servers: url, authenticator: credsAuthenticator(new TextEncoder().encode(await Bun.file(creds).text())), reconnect: false });
  onTestFinished(() => nc.close().catch(() => {}));
  return nc;
}

describe.skipIf(!HAS_NATS_SERVER)("credentials file → nats-server hub in operator mode", () => {
  test("the leaf authenticates with the user JWT and the signed nonce; messages flow both ways", async () => {
    const hub = await startProc("nats-server", { name: "HUB", config: hubConfig });
    const leaf = await startProc("natter", { name: "LEAF", config: remote(hub.leafPort, goodCreds) });
    const hc = await credsClient(hub.url, goodCreds);
    const lc = await client(leaf);
    await waitForLink(lc, hc, logs(hub, leaf));
    expect(leaf.log()).toContain("Leafnode connection created for account");
  });

  test("a user of an unknown account is refused", async () => {
    const hub = await startProc("nats-server", { name: "HUB", config: hubConfig });
    const leaf = await startProc("natter", { name: "LEAF", config: remote(hub.leafPort, strangerCreds) });
    await waitFor("the hub to refuse the leaf", () => /authoriz|authentication/i.test(hub.log().split("\n").filter((l) => l.includes("lid:") || l.includes("Leafnode")).join("\n")), 10_000, logs(hub, leaf));
    expect(leaf.log()).not.toContain("Leafnode connection created for account");
  });

  test("a malformed credentials file stops natter at start with one line", async () => {
    const bad = path.join(dir, "bad.creds");
    writeFileSync(bad, "not a creds file\n");
    await expect(startProc("natter", { name: "BAD", config: remote(7422, bad) })).rejects.toThrow(/Credentials file malformed/);
  });
});
