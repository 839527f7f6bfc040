// `tls { verify_and_map: true }`: the client certificate names the user of `authorization { users }`, as
// nats-server's checkClientTLSCertSubject: an email SAN, a DNS SAN, the subject DN as Go writes it
// (RFC 2253 order, `CN=bob,O=Acme`), the DN with its domain components, and the same RDNs in another order.
// The mapped user's permissions apply. `pinned_certs`: only client certificates whose public key hashes to
// a listed SHA-256 get in. Certificates are made at test time with openssl; also run against nats-server
// 2.9.10 (NATTER_TEST_SERVER=nats-server).
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { closeAfterTest } from "../harness/raw.ts";
import { startServer, type RunningServer } from "../harness/server.ts";
import { connectLine } from "./helpers.ts";
import { mapCertificateToUser, parseDn, pkixSubjectString } from "../../src/auth/tls-map.ts";
import { readCertificate } from "../../src/auth/x509.ts";

let dir: string;
const f = (name: string) => path.join(dir, name);

function openssl(args: string[], input?: string): Buffer {
  return execFileSync("openssl", args, { cwd: dir, input, stdio: ["pipe", "pipe", "pipe"] });
}

/** A client certificate from the test CA with this subject and these subjectAltNames (openssl syntax). */
function clientCert(name: string, subject: string, san: string | null): void {
  writeFileSync(f(`${name}.ext`), `extendedKeyUsage=clientAuth\n${san ? `subjectAltName=${san}\n` : ""}`);
  openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject]);
  openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", `${name}.pem`, "-days", "2", "-extfile", `${name}.ext`]);
}

/** The hex SHA-256 of a certificate's DER SubjectPublicKeyInfo, computed by openssl (nats-server's pin). */
function spkiSha256(name: string): string {
  const pub = openssl(["x509", "-in", `${name}.pem`, "-pubkey", "-noout"]);
  const der = execFileSync("openssl", ["pkey", "-pubin", "-outform", "der"], { input: pub });
  return execFileSync("openssl", ["dgst", "-sha256", "-hex"], { input: der }).toString().trim().split(" ").pop()!;
}

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), "natter-tlsmap-"));
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=natter test CA"]);
  writeFileSync(f("server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]);
  openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext"]);
  clientCert("alice", "/C=US/O=Acme/OU=Eng/CN=alice", "email:alice@example.com");
  clientCert("erin", "/CN=erin", "DNS:erin.example.com");
  clientCert("bob", "/O=Acme/CN=bob", null);
  clientCert("carol", "/DC=com/DC=example/CN=carol", null);
  clientCert("dave", "/O=Acme/OU=Ops/CN=dave", null);
  clientCert("mallory", "/O=Elsewhere/CN=mallory", null);
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const tlsBlock = (extra: string) =>
  `tls {\n  cert_file: "${f("server.pem")}"\n  key_file: "${f("server.key")}"\n  ca_file: "${f("ca.pem")}"\n${extra}}\n`;

const MAPPED = `
authorization {
  users = [
    {user: "alice@example.com", permissions: {publish: "alice.>", subscribe: "_INBOX.>"}}
    {user: "erin.example.com"}
    {user: "CN=bob,O=Acme"}
    {user: "CN=carol,DC=example,DC=com"}
    {user: "OU=Ops,CN=dave,O=Acme"}
  ]
}
`;

/**
 * A raw NATS session over TLS with a client certificate: INFO in plaintext, the handshake, then `lines`
 * and a PING. Resolves with what came back inside TLS up to the PONG (or up to the close).
 */
function session(port: number, cert: string, lines: string, connect: Record<string, unknown> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = closeAfterTest(net.connect({ host: "127.0.0.1", port }));
    let head = "";
    const onInfo = (d: Buffer) => {
      head += d.toString("latin1");
      if (!head.includes("\r\n")) return;
      socket.off("data", onInfo);
      const secure = closeAfterTest(
        tls.connect({ socket, ca: [readFileSync(f("ca.pem"))], servername: "localhost", cert: readFileSync(f(`${cert}.pem`)), key: readFileSync(f(`${cert}.key`)) }),
      );
      let reply = "";
      secure.on("secureConnect", () => secure.write(connectLine(connect) + lines + "PING\r\n"));
      secure.on("data", (b: Buffer) => {
        reply += b.toString("latin1");
        if (reply.includes("PONG\r\n")) resolve(reply);
      });
      secure.on("error", () => resolve(reply));
      secure.on("close", () => resolve(reply));
    };
    socket.on("data", onInfo);
    socket.on("error", reject);
  });
}

describe("verify_and_map", () => {
  let srv: RunningServer;
  beforeAll(async () => {
    srv = await startServer({ config: tlsBlock("  verify_and_map: true\n") + MAPPED });
  });

  test("an email SAN names the user, whose permissions apply", async () => {
    const reply = await session(srv.port, "alice", "PUB alice.x 1\r\na\r\nPUB bob.x 1\r\nb\r\n");
    expect(reply).toBe(`-ERR 'Permissions Violation for Publish to "bob.x"'\r\nPONG\r\n`);
  });

  test("a DNS SAN names the user", async () => {
    expect(await session(srv.port, "erin", "")).toBe("PONG\r\n");
  });

  test("the subject DN in RFC 2253 form names the user", async () => {
    expect(await session(srv.port, "bob", "PUB bob.x 1\r\nb\r\n")).toBe("PONG\r\n");
  });

  test("the DN with its domain components, and a DN given in another order", async () => {
    expect(await session(srv.port, "carol", "")).toBe("PONG\r\n");
    expect(await session(srv.port, "dave", "")).toBe("PONG\r\n");
  });

  test("a certificate that names no user: Authorization Violation, closed", async () => {
    expect(await session(srv.port, "mallory", "")).toBe("-ERR 'Authorization Violation'\r\n");
  });

  test("CONNECT's user does not matter, the certificate decides; its password must match the mapped user's (none)", async () => {
    const reply = await session(srv.port, "alice", "PUB bob.x 1\r\nb\r\n", { user: "CN=bob,O=Acme" });
    expect(reply).toBe(`-ERR 'Permissions Violation for Publish to "bob.x"'\r\nPONG\r\n`);
    expect(await session(srv.port, "mallory", "", { user: "CN=bob,O=Acme" })).toBe("-ERR 'Authorization Violation'\r\n");
    expect(await session(srv.port, "alice", "", { pass: "anything" })).toBe("-ERR 'Authorization Violation'\r\n");
  });
});

describe("verify_and_map with allow_non_tls (TLS chosen by the client's first byte)", () => {
  test("a TLS client is mapped by its certificate; one that names nobody is refused", async () => {
    const srv = await startServer({ config: tlsBlock("  verify_and_map: true\n") + MAPPED + "allow_non_tls: true\n" });
    expect(await session(srv.port, "alice", "PUB bob.x 1\r\nb\r\n")).toBe(`-ERR 'Permissions Violation for Publish to "bob.x"'\r\nPONG\r\n`);
    expect(await session(srv.port, "bob", "")).toBe("PONG\r\n");
    expect(await session(srv.port, "mallory", "")).toBe("-ERR 'Authorization Violation'\r\n");
  });
});

describe("pinned_certs", () => {
  test("only a client certificate whose public key is pinned gets in", async () => {
    const srv = await startServer({ config: tlsBlock(`  verify: true\n  pinned_certs: ["${spkiSha256("alice").toUpperCase()}"]\n`) });
    expect(await session(srv.port, "alice", "")).toBe("PONG\r\n");
    expect(await session(srv.port, "bob", "")).toBe("");
  });
});

describe("how a certificate's identity is read (unit)", () => {
  test("the subject as Go writes it, and DNs as nats-server parses them", () => {
    const der = (name: string) => Buffer.from(new X509Certificate(readFileSync(f(`${name}.pem`))).raw);
    const alice = readCertificate(der("alice"));
    expect(pkixSubjectString(alice.subject)).toBe("CN=alice,OU=Eng,O=Acme,C=US");
    expect(alice.emails).toEqual(["alice@example.com"]);
    expect(pkixSubjectString(readCertificate(der("carol")).subject)).toBe("CN=carol"); // pkix drops DC
    expect(mapCertificateToUser(readCertificate(der("carol")), new Set(["CN=carol,DC=example,DC=com"]))).toBe("CN=carol,DC=example,DC=com");
    expect(parseDn("CN=a\\,b, O = x ")).toEqual([[{ type: "CN", value: "a,b" }], [{ type: "O", value: "x" }]]);
    expect(parseDn("CN=#0403")).toBeNull();
  });
});
