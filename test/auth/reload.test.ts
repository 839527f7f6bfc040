// SIGHUP with changed authentication, permissions and TLS: a real natter started with a config file, the
// file rewritten, SIGHUP sent; connected clients (the official `nats` client) are checked again with their
// CONNECT's credentials (src/auth/reload.ts), and new client-port connections get the new certificate.
// Every wait has a deadline; processes are killed when their test ends (test/ops/proc.ts).
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import tls from "node:tls";
import { describe, expect, test } from "vitest";
import * as nats from "nats";
import { freePort, spawnNatter, tempDir, writeConfig, type NatterProcess } from "../ops/proc.ts";

const dir = tempDir("natter-auth-reload-");

/** Sends SIGHUP and waits for the n-th reload outcome line; returns it. */
async function reload(p: NatterProcess, n: number): Promise<string> {
  p.signal("SIGHUP");
  const out = await p.waitForOutput(new RegExp(`(?:[\\s\\S]*?(?:Reloaded server configuration|Failed to reload server configuration)){${n}}`));
  return out.match(/Reloaded server configuration|Failed to reload server configuration/g)!.slice(-1)[0]!;
}

async function start(name: string, body: (port: number) => string) {
  const port = await freePort();
  const write = (text: string) => writeConfig(dir, name, text);
  write(body(port));
  const p = spawnNatter(["-c", path.join(dir, name)]);
  await p.waitForOutput(/Server is ready/);
  return { port, p, rewrite: (next: (port: number) => string) => write(next(port)) };
}

function connect(port: number, opts: nats.ConnectionOptions = {}): Promise<nats.NatsConnection> {
  return nats.connect({ servers: `127.0.0.1:${port}`, reconnect: false, timeout: 5_000, ...opts });
}

/** Resolves with the error the connection was closed with; rejects at the deadline. */
async function closedWith(nc: nats.NatsConnection, timeoutMs = 5_000): Promise<Error | void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`connection not closed within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([nc.closed(), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** A publish and its delivery on one connection (it is still open and allowed on `subject`). */
async function roundTrip(nc: nats.NatsConnection, subject = "rt.check"): Promise<void> {
  const sub = nc.subscribe(subject, { max: 1 });
  await nc.flush();
  nc.publish(subject, "x");
  for await (const m of sub) expect(m.string()).toBe("x");
}

async function refused(port: number, opts: nats.ConnectionOptions): Promise<string> {
  const err = await connect(port, opts).then(
    async (nc) => {
      await nc.close();
      return null;
    },
    (e: nats.NatsError) => e,
  );
  expect(err, "connect should have been refused").not.toBeNull();
  return err!.code;
}

const users = (list: string) => (port: number) => `host: 127.0.0.1\nport: ${port}\nauthorization {\n  users: [\n${list}\n  ]\n}\n`;

describe("SIGHUP reloads authorization", () => {
  test("a removed user is closed with Authorization Violation; the others stay", async () => {
    const { port, p, rewrite } = await start("removed.conf", users(`    { user: alice, password: a1 }\n    { user: bob, password: b1 }`));
    const alice = await connect(port, { user: "alice", pass: "a1" });
    const bob = await connect(port, { user: "bob", pass: "b1" });
    try {
      rewrite(users(`    { user: bob, password: b1 }`));
      expect(await reload(p, 1)).toBe("Reloaded server configuration");
      expect(p.output()).toContain("Reloaded: authorization");
      const err = (await closedWith(alice)) as nats.NatsError;
      expect(err?.code).toBe(nats.ErrorCode.AuthorizationViolation);
      await p.waitForOutput(/authentication error - User "alice"/);
      await roundTrip(bob);
      expect(await refused(port, { user: "alice", pass: "a1" })).toBe(nats.ErrorCode.AuthorizationViolation);
      // Never a password in the log.
      expect(p.output()).not.toMatch(/a1|b1/);
    } finally {
      await Promise.all([alice.close(), bob.close()]);
    }
  });

  test("a changed (bcrypt) password: the old one is refused, the connection that used it is closed, unchanged users stay", async () => {
    const hash = (pw: string) => Bun.password.hashSync(pw, { algorithm: "bcrypt", cost: 4 });
    const bobHash = hash("b1");
    const { port, p, rewrite } = await start("password.conf", users(`    { user: alice, password: "${hash("a1")}" }\n    { user: bob, password: "${bobHash}" }`));
    const alice = await connect(port, { user: "alice", pass: "a1" });
    const bob = await connect(port, { user: "bob", pass: "b1" });
    try {
      rewrite(users(`    { user: alice, password: "${hash("a2")}" }\n    { user: bob, password: "${bobHash}" }`));
      expect(await reload(p, 1)).toBe("Reloaded server configuration");
      const err = (await closedWith(alice)) as nats.NatsError;
      expect(err?.code).toBe(nats.ErrorCode.AuthorizationViolation);
      expect(await refused(port, { user: "alice", pass: "a1" })).toBe(nats.ErrorCode.AuthorizationViolation);
      const again = await connect(port, { user: "alice", pass: "a2" });
      await roundTrip(again);
      await again.close();
      await roundTrip(bob);
      expect(bob.isClosed()).toBe(false);
    } finally {
      await Promise.all([alice.close(), bob.close()]);
    }
  });

  test("narrowed permissions: a publish is now refused, and a subscription they refuse is removed with an -ERR", async () => {
    const perms = (pub: string, sub: string) =>
      users(`    { user: admin, password: x }\n    { user: bob, password: b1, permissions: { publish: ${pub}, subscribe: ${sub} } }`);
    const { port, p, rewrite } = await start("perms.conf", perms(`">"`, `">"`));
    const admin = await connect(port, { user: "admin", pass: "x" });
    const bob = await connect(port, { user: "bob", pass: "b1" });
    try {
      const statuses: nats.Status[] = [];
      (async () => {
        for await (const s of bob.status()) statuses.push(s);
      })().catch(() => {});
      const news: string[] = [];
      bob.subscribe("news.x", { callback: (_e, m) => news.push(m.string()) });
      let removed: nats.NatsError | null = null;
      const other: string[] = [];
      bob.subscribe("other.y", {
        callback: (e, m) => {
          if (e) removed = e;
          else other.push(m.string());
        },
      });
      await bob.flush();

      rewrite(perms(`"news.>"`, `"news.>"`));
      expect(await reload(p, 1)).toBe("Reloaded server configuration");
      await p.waitForOutput(/Removed sub "other.y" \(sid "\d+"\) for User "bob" - not authorized/);
      await expect.poll(() => removed?.code, { timeout: 5_000 }).toBe(nats.ErrorCode.PermissionsViolation);
      expect(removed!.message).toMatch(/^'?Permissions Violation for Subscription to "other.y" \(sid "\d+"\)'?$/);

      // The connection stays; a publish outside the new permissions is refused with the -ERR.
      bob.publish("other.z", "no");
      await expect
        .poll(() => statuses.find((s) => s.type === nats.Events.Error && s.data === nats.ErrorCode.PermissionsViolation), { timeout: 5_000 })
        .toBeTruthy();
      await p.waitForOutput(/Publish Violation - User "bob", Subject "other.z"/);

      // The removed subscription gets nothing any more; the allowed one still does.
      admin.publish("other.y", "late");
      admin.publish("news.x", "hello");
      await admin.flush();
      await expect.poll(() => news, { timeout: 5_000 }).toEqual(["hello"]);
      await bob.flush();
      expect(other).toEqual([]);
      expect(bob.isClosed()).toBe(false);
    } finally {
      await Promise.all([admin.close(), bob.close()]);
    }
  });

  test("a changed token: the connection with the old one is closed, the new one gets in", async () => {
    const conf = (token: string) => (port: number) => `host: 127.0.0.1\nport: ${port}\nauthorization { token: ${token} }\n`;
    const { port, p, rewrite } = await start("token.conf", conf("t1"));
    const old = await connect(port, { token: "t1" });
    try {
      rewrite(conf("t2"));
      expect(await reload(p, 1)).toBe("Reloaded server configuration");
      const err = (await closedWith(old)) as nats.NatsError;
      expect(err?.code).toBe(nats.ErrorCode.AuthorizationViolation);
      expect(await refused(port, { token: "t1" })).toBe(nats.ErrorCode.AuthorizationViolation);
      const nc = await connect(port, { token: "t2" });
      await roundTrip(nc);
      await nc.close();
      expect(p.output()).not.toMatch(/\bt1\b|\bt2\b/);
    } finally {
      await old.close();
    }
  });

  test("authentication turned on: a client connected without credentials is closed", async () => {
    const { port, p, rewrite } = await start("on.conf", (port) => `host: 127.0.0.1\nport: ${port}\n`);
    const anon = await connect(port);
    try {
      rewrite(users(`    { user: carol, password: c1 }`));
      expect(await reload(p, 1)).toBe("Reloaded server configuration");
      const err = (await closedWith(anon)) as nats.NatsError;
      expect(err?.code).toBe(nats.ErrorCode.AuthorizationViolation);
      const carol = await connect(port, { user: "carol", pass: "c1" });
      await roundTrip(carol);
      await carol.close();
    } finally {
      await anon.close();
    }
  });

  test("changing an account itself still needs a restart; its users reload", async () => {
    const conf = (imports: string, pw: string) => (port: number) =>
      `host: 127.0.0.1\nport: ${port}\naccounts {\n  A { users: [ { user: a, password: ${pw} } ]${imports} }\n  B { exports: [ { stream: "b.>" } ] }\n}\n`;
    const { port, p, rewrite } = await start("accounts.conf", conf("", "p1"));
    const a = await connect(port, { user: "a", pass: "p1" });
    try {
      rewrite(conf(`, imports: [ { stream: { account: B, subject: "b.>" } } ]`, "p1"));
      expect(await reload(p, 1)).toBe("Failed to reload server configuration");
      expect(p.output()).toContain("config reload not supported for accounts: old=[A B], new=[A B]");
      rewrite(conf("", "p2"));
      expect(await reload(p, 2)).toBe("Reloaded server configuration");
      expect(p.output()).toContain("Reloaded: accounts users");
      const err = (await closedWith(a)) as nats.NatsError;
      expect(err?.code).toBe(nats.ErrorCode.AuthorizationViolation);
      const again = await connect(port, { user: "a", pass: "p2" });
      await roundTrip(again);
      await again.close();
    } finally {
      await a.close();
    }
  });
});

describe("SIGHUP reloads the client port's TLS certificate", () => {
  function makeCert(name: string): void {
    execFileSync(
      "openssl",
      ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.pem`, "-days", "2", "-subj", `/CN=${name}`, "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
      { cwd: dir, stdio: ["ignore", "ignore", "pipe"] },
    );
  }
  const fingerprint = (pemFile: string) => new X509Certificate(readFileSync(path.join(dir, pemFile))).fingerprint256;

  /** The NATS way: plaintext INFO, then TLS on the same socket; resolves with the server certificate's fingerprint. */
  function peerFingerprint(port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: "127.0.0.1", port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error("no TLS handshake within 5 s"));
      }, 5_000);
      socket.once("data", () => {
        const secure = tls.connect({ socket, rejectUnauthorized: false }, () => {
          clearTimeout(timer);
          const fp = secure.getPeerX509Certificate()!.fingerprint256;
          secure.destroy();
          resolve(fp);
        });
        secure.on("error", (e) => {
          clearTimeout(timer);
          reject(e);
        });
      });
      socket.on("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  test("a certificate replaced in place: new connections see the new one, a connected client stays", async () => {
    makeCert("one");
    makeCert("two");
    makeCert("live"); // the file the config names, overwritten with "two" below
    execFileSync("cp", ["one.pem", "live.pem"], { cwd: dir });
    execFileSync("cp", ["one.key", "live.key"], { cwd: dir });
    const conf = (port: number) =>
      `host: 127.0.0.1\nport: ${port}\ntls {\n  cert_file: "${path.join(dir, "live.pem")}"\n  key_file: "${path.join(dir, "live.key")}"\n}\n`;
    const { port, p } = await start("tls.conf", conf);
    expect(await peerFingerprint(port)).toBe(fingerprint("one.pem"));
    const nc = await connect(port, { tls: { ca: readFileSync(path.join(dir, "one.pem"), "utf8") } });
    try {
      execFileSync("cp", ["two.pem", "live.pem"], { cwd: dir });
      execFileSync("cp", ["two.key", "live.key"], { cwd: dir });
      expect(await reload(p, 1)).toBe("Reloaded server configuration");
      expect(p.output()).toContain("Reloaded: tls = ");
      expect(await peerFingerprint(port)).toBe(fingerprint("two.pem"));
      await roundTrip(nc);

      // A key that does not belong to the certificate is refused; the running certificate stays.
      execFileSync("cp", ["one.key", "live.key"], { cwd: dir });
      expect(await reload(p, 2)).toBe("Failed to reload server configuration");
      expect(p.output()).toMatch(/Failed to reload server configuration: tls: /);
      expect(await peerFingerprint(port)).toBe(fingerprint("two.pem"));
    } finally {
      await nc.close();
    }
  });
});
