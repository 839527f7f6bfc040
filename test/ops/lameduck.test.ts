// Lame duck mode (SIGUSR2 or `--signal ldm=<pid>`), as nats-server does it: the listener closes at once,
// protocol-1 clients get INFO with "ldm":true, clients are closed after the grace period, then exit 0.
// Also the other --signal commands.
import { existsSync } from "node:fs";
import path from "node:path";
import { Events, connect } from "nats";
import { describe, expect, test } from "vitest";
import { connectReady, freePort, refuses, runNatter, spawnNatter, tempDir, waitFor, writeConfig } from "./proc.ts";

const dir = tempDir();

/** A server with short lame duck settings: 30 s is the minimum duration; the grace period may be short. */
async function startLameDuckServer(name: string, grace = "100ms") {
  const port = await freePort();
  const conf = writeConfig(dir, name, `host: 127.0.0.1\nport: ${port}\nlame_duck_duration: "30s"\nlame_duck_grace_period: "${grace}"\n`);
  const p = spawnNatter(["-c", conf]);
  await p.waitForOutput(/Server is ready/);
  return { port, p };
}

describe("lame duck mode", () => {
  test("SIGUSR2: INFO ldm:true to protocol-1 clients, listener refuses, clients closed, exit 0", async () => {
    const { port, p } = await startLameDuckServer("ldm.conf");
    const modern = await connectReady(port, { protocol: 1 });
    const old = await connectReady(port, { protocol: 0 });
    p.signal("SIGUSR2");

    const info = await modern.expectLine(/^INFO /);
    expect(info.info).toMatchObject({ ldm: true, port });
    // The listener closes at once; connected clients stay until the grace period is over.
    await waitFor(() => refuses(port), 5_000, "the listener to refuse connections");
    expect(await modern.waitClosed(10_000)).toBe(true);
    expect(await old.waitClosed(10_000)).toBe(true);
    // Closed without an -ERR (Server Shutdown); the protocol-0 client got no INFO.
    expect(modern.frames.map((f) => f.op)).toEqual([]);
    expect(old.frames.map((f) => f.op)).toEqual([]);

    const exit = await p.waitForExit(15_000);
    expect(exit).toEqual({ code: 0, signal: null });
    const out = p.output();
    expect(out).toContain("Entering lame duck mode, stop accepting new clients");
    expect(out).toContain("Closing existing clients");
    expect(out.indexOf("Entering lame duck mode")).toBeLessThan(out.indexOf("Closing existing clients"));
  });

  test("a nats.js client sees the ldm status event and is disconnected", async () => {
    const { port, p } = await startLameDuckServer("ldm-client.conf");
    const nc = await connect({ servers: `127.0.0.1:${port}`, reconnect: false, timeout: 5_000 });
    try {
      const events: string[] = [];
      void (async () => {
        for await (const s of nc.status()) events.push(s.type);
      })();
      const closed = nc.closed();
      p.signal("SIGUSR2");
      await waitFor(() => events.includes(Events.LDM), 10_000, "the ldm status event");
      await closed;
      expect((await p.waitForExit(15_000)).code).toBe(0);
    } finally {
      if (!nc.isClosed()) await nc.close();
    }
  });

  test("SIGTERM does not cut it short (as nats-server); it still ends with exit 0", async () => {
    const { port, p } = await startLameDuckServer("ldm-term.conf", "1s");
    const c = await connectReady(port, { protocol: 1 });
    p.signal("SIGUSR2");
    await c.expectLine(/^INFO .*"ldm":true/);
    p.signal("SIGTERM");
    await p.waitForOutput(/lame duck mode in progress, ignored/);
    expect(c.closed).toBe(false);
    expect(await c.waitClosed(10_000)).toBe(true);
    expect((await p.waitForExit(15_000)).code).toBe(0);
  });

  test("with no clients it exits at once", async () => {
    const { port, p } = await startLameDuckServer("ldm-empty.conf", "5s");
    p.signal("SIGUSR2");
    expect((await p.waitForExit(5_000)).code).toBe(0);
    expect(await refuses(port)).toBe(true);
  });
});

describe("--signal", () => {
  test("ldm=<pid> puts a running server into lame duck mode", async () => {
    const { port, p } = await startLameDuckServer("sig-ldm.conf");
    const c = await connectReady(port, { protocol: 1 });
    const r = await runNatter(["--signal", `ldm=${p.pid}`]);
    expect(r).toMatchObject({ code: 0, output: "" });
    await c.expectLine(/^INFO .*"ldm":true/);
    expect((await p.waitForExit(15_000)).code).toBe(0);
  });

  test("reload=<pid file> reloads; quit=<pid> stops with exit 0", async () => {
    const port = await freePort();
    const pidFile = path.join(dir, "sig.pid");
    const conf = writeConfig(dir, "sig.conf", `host: 127.0.0.1\nport: ${port}\npid_file: "${pidFile}"\n`);
    const p = spawnNatter(["-c", conf]);
    await p.waitForOutput(/Server is ready/);
    await waitFor(() => existsSync(pidFile), 5_000, "the pid file");
    writeConfig(dir, "sig.conf", `host: 127.0.0.1\nport: ${port}\npid_file: "${pidFile}"\ndebug: true\n`);
    expect((await runNatter(["-sl", `reload=${pidFile}`])).code).toBe(0);
    await p.waitForOutput(/Reloaded: debug = true[\s\S]*Reloaded server configuration/);
    expect((await runNatter(["--signal", `quit=${p.pid}`])).code).toBe(0);
    expect(await p.waitForExit(10_000)).toEqual({ code: 0, signal: null });
  });

  test("stop=<pid> kills; bad commands and pids are one-line errors", async () => {
    const port = await freePort();
    const p = spawnNatter(["-a", "127.0.0.1", "-p", String(port)]);
    await p.waitForOutput(/Server is ready/);
    expect((await runNatter(["--signal", `stop=${p.pid}`])).code).toBe(0);
    expect((await p.waitForExit(10_000)).signal).toBe("SIGKILL");

    const unknown = await runNatter(["--signal", "dance=1"]);
    expect(unknown).toMatchObject({ code: 1, output: 'natter: unknown signal "dance"\n' });
    const badPid = await runNatter(["--signal", "reload=notapid"]);
    expect(badPid).toMatchObject({ code: 1, output: "natter: invalid pid: notapid\n" });
    const extra = await runNatter(["--signal", "reload=1=2"]);
    expect(extra).toMatchObject({ code: 1, output: "natter: invalid signal parameters: [2]\n" });
  });
});
