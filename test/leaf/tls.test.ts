// TLS on leaf connections: natter leaf → nats-server hub, nats-server leaf → natter hub, natter → natter
// with verify (mutual TLS), and what a leaf without TLS (or without a trusted chain) gets from a TLS hub.
// As nats-server: the hub's INFO comes in plaintext with tls_required, then the handshake on the same
// socket; a remote's `tls {}` (or the hub's tls_required) makes the leaf do it.
import net from "node:net";
import { beforeAll, describe, expect, test } from "vitest";
import { HAS_NATS_SERVER, client, logs, waitForLink } from "./helpers.ts";
import { makeCerts, type Certs } from "./certs.ts";
import { HOST, startProc, waitFor, type Kind, type Proc } from "./spawn.ts";

let certs: Certs;
beforeAll(() => {
  certs = makeCerts();
});

function hubConfig(verify = false): string {
  const f = certs.file;
  const extra = verify ? `    ca_file: "${f("ca.pem")}"\n    verify: true\n` : "";
  return `leafnodes {\n  listen: "${HOST}:{{leaf_port}}"\n  tls {\n    cert_file: "${f("server.pem")}"\n    key_file: "${f("server.key")}"\n${extra}  }\n}\n`;
}

/** A remote to `hub` over `scheme`, with a tls block of these lines (none: no tls block). */
function leafConfig(hub: Proc, tlsLines: string[] | null, scheme = "tls"): string {
  const tls = tlsLines === null ? "" : `, tls { ${tlsLines.join(", ")} }`;
  return `leafnodes {\n  reconnect: 1\n  remotes [ { url: "${scheme}://${HOST}:${hub.leafPort}"${tls} } ]\n}\n`;
}

const ca = () => `ca_file: "${certs.file("ca.pem")}"`;
const clientCert = () => [`cert_file: "${certs.file("client.pem")}"`, `key_file: "${certs.file("client.key")}"`];

/** Both directions carry messages through the TLS link. */
async function linked(hub: Proc, leaf: Proc): Promise<void> {
  const hc = await client(hub);
  const lc = await client(leaf);
  await waitForLink(lc, hc, logs(hub, leaf));
}

const PAIRINGS: { leaf: Kind; hub: Kind }[] = [
  { leaf: "natter", hub: "nats-server" },
  { leaf: "nats-server", hub: "natter" },
  { leaf: "natter", hub: "natter" },
];

describe("TLS leaf connections", () => {
  for (const { leaf: leafKind, hub: hubKind } of PAIRINGS) {
    const needsReference = leafKind === "nats-server" || hubKind === "nats-server";
    test.skipIf(needsReference && !HAS_NATS_SERVER)(`${leafKind} leaf → ${hubKind} hub over TLS (tls:// with a CA)`, async () => {
      const hub = await startProc(hubKind, { name: "HUB", config: hubConfig() });
      const leaf = await startProc(leafKind, { name: "LEAF", config: leafConfig(hub, [ca()]) });
      await linked(hub, leaf);
    });
  }

  test("nats-leaf:// with a tls block is TLS too (the scheme does not decide)", async () => {
    const hub = await startProc("natter", { name: "HUB", config: hubConfig() });
    const leaf = await startProc("natter", { name: "LEAF", config: leafConfig(hub, [ca()], "nats-leaf") });
    await linked(hub, leaf);
  });

  test.skipIf(!HAS_NATS_SERVER)("mutual TLS (verify) between natter leaf and nats-server hub", async () => {
    const hub = await startProc("nats-server", { name: "HUB", config: hubConfig(true) });
    const leaf = await startProc("natter", { name: "LEAF", config: leafConfig(hub, [ca(), ...clientCert()]) });
    await linked(hub, leaf);
  });
});

describe("a natter hub with verify (mutual TLS)", () => {
  test("a natter leaf with a client certificate from the CA connects", async () => {
    const hub = await startProc("natter", { name: "HUB", config: hubConfig(true) });
    const leaf = await startProc("natter", { name: "LEAF", config: leafConfig(hub, [ca(), ...clientCert()]) });
    await linked(hub, leaf);
  });

  test.skipIf(!HAS_NATS_SERVER)("a nats-server leaf with a client certificate connects", async () => {
    const hub = await startProc("natter", { name: "HUB", config: hubConfig(true) });
    const leaf = await startProc("nats-server", { name: "LEAF", config: leafConfig(hub, [ca(), ...clientCert()]) });
    await linked(hub, leaf);
  });

  test("a leaf without a client certificate, or with one from another CA, is refused", async () => {
    const hub = await startProc("natter", { name: "HUB", config: hubConfig(true) });
    const rogue = [`cert_file: "${certs.file("rogue.pem")}"`, `key_file: "${certs.file("rogue.key")}"`];
    const noCert = await startProc("natter", { name: "NOCERT", config: leafConfig(hub, [ca()]) });
    const wrongCa = await startProc("natter", { name: "ROGUE", config: leafConfig(hub, [ca(), ...rogue]) });
    const detail = logs(hub, noCert, wrongCa);
    await waitFor("two refused handshakes at the hub", () => (hub.log().match(/TLS leafnode handshake error/g)?.length ?? 0) >= 2, 10_000, detail);
    expect(hub.log()).not.toContain("Leafnode connection open");
    expect(noCert.log()).not.toContain("Leafnode connection created for account");
    expect(wrongCa.log()).not.toContain("Leafnode connection created for account");
  });
});

describe("a TLS hub refuses plaintext", () => {
  test("a raw leaf that sends CONNECT in plaintext after the INFO is closed, without a NATS reply", async () => {
    const hub = await startProc("natter", { name: "HUB", config: hubConfig() });
    const got = await new Promise<{ info: Record<string, unknown>; after: string }>((resolve, reject) => {
      const socket = net.connect({ host: HOST, port: hub.leafPort });
      let text = "";
      let info: Record<string, unknown> | null = null;
      socket.on("data", (d: Buffer) => {
        text += d.toString("latin1");
        if (info === null && text.includes("\r\n")) {
          info = JSON.parse(text.slice(5, text.indexOf("\r\n")).trim()) as Record<string, unknown>;
          text = text.slice(text.indexOf("\r\n") + 2);
          socket.write(`CONNECT {"server_id":"x","name":"plain","headers":true}\r\nPING\r\n`);
        }
      });
      socket.on("close", () => (info === null ? reject(new Error("closed before INFO")) : resolve({ info, after: text })));
      socket.on("error", () => {});
      setTimeout(() => {
        socket.destroy();
        reject(new Error(`not closed within 10 s; got ${JSON.stringify(text)}`));
      }, 10_000);
    });
    expect(got.info.tls_required).toBe(true);
    expect(got.after).not.toContain("PONG");
    expect(got.after).not.toContain("-ERR");
    await waitFor("the hub to log the failed handshake", () => hub.log().includes("TLS leafnode handshake error"), 5000, logs(hub));
  });

  for (const hubKind of ["natter", "nats-server"] as Kind[]) {
    test.skipIf(hubKind === "nats-server" && !HAS_NATS_SERVER)(`a natter leaf without a tls block tries TLS (the ${hubKind} hub requires it) and fails on the unknown CA`, async () => {
      const hub = await startProc(hubKind, { name: "HUB", config: hubConfig() });
      const leaf = await startProc("natter", { name: "LEAF", config: leafConfig(hub, null, "nats-leaf") });
      await waitFor("the leaf to log the failed handshake", () => leaf.log().includes("TLS leafnode handshake error"), 10_000, logs(hub, leaf));
      expect(leaf.log()).not.toContain("Leafnode connection created for account");
    });
  }
});
