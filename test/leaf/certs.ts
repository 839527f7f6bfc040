// Certificates for the leaf TLS tests, made at test time with openssl the way test/auth/tls.test.ts
// makes them for the client port: a CA, a server certificate for 127.0.0.1 and localhost, a client
// certificate from the CA, and a self-signed "rogue" one. In a temp dir removed when the file ends.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll } from "vitest";

export interface Certs {
  readonly dir: string;
  /** The path of a file in the dir: ca.pem, server.pem/key, client.pem/key, rogue.pem/key. */
  file(name: string): string;
}

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

export function makeCerts(): Certs {
  const dir = mkdtempSync(path.join(os.tmpdir(), "natter-leaf-tls-"));
  dirs.push(dir);
  const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=natter test CA");
  writeFileSync(path.join(dir, "server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost");
  openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext");
  writeFileSync(path.join(dir, "client.ext"), "extendedKeyUsage=clientAuth\n");
  openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=leaf");
  openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "client.pem", "-days", "2", "-extfile", "client.ext");
  openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rogue.key", "-out", "rogue.pem", "-days", "2", "-subj", "/CN=rogue");
  return { dir, file: (name) => path.join(dir, name) };
}
