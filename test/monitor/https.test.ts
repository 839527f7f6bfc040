// Monitoring over HTTPS (nats-server's https_port / -ms, or `https: host:port`): the same endpoints on a
// TLS listener with the server's `tls` block certificate; never with http_port too, never without a
// certificate (nats-server's words for both). The web console is then served over it, its session cookie
// Secure. The certificate is self-signed, made here with openssl. Against natter and nats-server (the
// console part natter only).
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serverKind } from "../harness/server.ts";
import { freePorts } from "../harness/free-port.ts";
import { getJson, startMonitored, type Monitored } from "./spawn.ts";

const REPO = path.resolve(import.meta.dirname, "../..");

describe("monitoring over HTTPS (https_port)", () => {
  let dir: string;
  let ca: string;
  let tlsBlock: string;
  const started: Monitored[] = [];

  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), "natter-https-"));
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "key.pem", "-out", "cert.pem",
      "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"], { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
    ca = readFileSync(path.join(dir, "cert.pem"), "utf8");
    tlsBlock = `tls { cert_file: ${JSON.stringify(path.join(dir, "cert.pem"))}, key_file: ${JSON.stringify(path.join(dir, "key.pem"))} }\n`;
  });
  afterAll(async () => {
    await Promise.all(started.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(conf: string): Promise<Monitored> {
    const file = path.join(dir, `s${started.length}.conf`);
    writeFileSync(file, conf);
    const s = await startMonitored(serverKind, ["-c", file], { ca });
    started.push(s);
    return s;
  }

  it("serves the endpoints over TLS with the tls block's certificate; /varz tells https_port; plain HTTP gets nothing", async () => {
    const s = await start(tlsBlock);
    const varz = await getJson<{ http_port: number; https_port: number }>(s, "/varz");
    expect([varz.http_port, varz.https_port]).toEqual([0, s.httpPort]);
    expect((await getJson<{ status: string }>(s, "/healthz")).status).toBe("ok");
    // Without the certificate's CA, a client refuses the server; in plain HTTP, the server refuses the client.
    await expect(fetch(`${s.base}/varz`, { signal: AbortSignal.timeout(5_000) })).rejects.toThrow();
    const plain = await fetch(`http://127.0.0.1:${s.httpPort}/varz`, { signal: AbortSignal.timeout(5_000) }).then((r) => r.status, () => "no answer");
    expect(plain).not.toBe(200);
  });

  it("refuses to start with http_port as well, or without a certificate, in nats-server's words", async () => {
    const [port, http, https] = await freePorts(3);
    const bin = serverKind === "natter" ? [path.join(REPO, "node_modules/.bin/bun"), path.join(REPO, "src/main.ts")] : [process.env.NATS_SERVER_BIN ?? "nats-server"];
    const run = (conf: string) => {
      const file = path.join(dir, "bad.conf");
      writeFileSync(file, conf);
      const r = spawnSync(bin[0]!, [...bin.slice(1), "-a", "127.0.0.1", "-p", String(port), "-c", file], { encoding: "utf8", timeout: 20_000 });
      return { status: r.status, output: `${r.stdout}${r.stderr}` };
    };
    const both = run(`${tlsBlock}http_port: ${http}\nhttps_port: ${https}\n`);
    expect(both.status).not.toBe(0);
    expect(both.output).toContain(`can't specify both HTTP (${http}) and HTTPs (${https}) ports`);
    const noCert = run(`https: "127.0.0.1:${https}"\n`);
    expect(noCert.status).not.toBe(0);
    expect(noCert.output).toContain("TLS cert and key required for HTTPS");
  }, 30_000);

  it.skipIf(serverKind !== "natter")("the console is served over it, its session cookie Secure", async () => {
    const s = await start(`${tlsBlock}console { users: [ { user: ops, password: "console-pw", role: admin } ] }\n`);
    const page = await fetch(`${s.base}/console`, { tls: s.tls });
    expect([page.status, page.headers.get("content-type")]).toEqual([200, "text/html; charset=utf-8"]);
    expect(await page.text()).toContain('<script type="module" src="/console/app.js">');
    const login = await fetch(`${s.base}/console/api/login`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ user: "ops", password: "console-pw" }), tls: s.tls });
    expect(login.status).toBe(200);
    const cookie = login.headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(/; HttpOnly; SameSite=Strict; Secure$/);
    const session = await fetch(`${s.base}/console/api/session`, { headers: { Cookie: cookie.split(";")[0]! }, tls: s.tls });
    expect(await session.json()).toMatchObject({ user: "ops", role: "admin" });
    const overview = (await (await fetch(`${s.base}/console/api/overview`, { headers: { Cookie: cookie.split(";")[0]! }, tls: s.tls })).json()) as { config: [string, string][] };
    expect(JSON.stringify(overview.config)).toContain(`https://127.0.0.1:${s.httpPort}`);
  });
});
