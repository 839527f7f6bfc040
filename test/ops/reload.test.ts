// SIGHUP: the config file is read again and applied while clients stay connected; a bad file or a change
// that needs a restart is logged and the running configuration stays (nats-server's behaviour).
import { describe, expect, test } from "vitest";
import { connectRaw, connectReady, freePort, spawnNatter, tempDir, writeConfig, type NatterProcess } from "./proc.ts";

const dir = tempDir();

/** Sends SIGHUP and waits for the n-th reload outcome line (applied or failed) in the output. */
async function reload(p: NatterProcess, n: number): Promise<string> {
  p.signal("SIGHUP");
  const re = /Reloaded server configuration|Failed to reload server configuration/g;
  const out = await p.waitForOutput(new RegExp(`(?:[\\s\\S]*?(?:Reloaded server configuration|Failed to reload server configuration)){${n}}`));
  return out.match(re)!.slice(-1)[0]!;
}

async function start(name: string, body: (port: number) => string, flags: string[] = []) {
  const port = await freePort();
  const conf = writeConfig(dir, name, body(port));
  const p = spawnNatter(["-c", conf, ...flags]);
  await p.waitForOutput(/Server is ready/);
  return { port, conf, p };
}

describe("SIGHUP reload", () => {
  test("changes the log level and limits without dropping a connected client", async () => {
    const base = (port: number) => `host: 127.0.0.1\nport: ${port}\nmax_payload: 1KB\n`;
    const { port, conf, p } = await start("live.conf", base);
    const a = await connectReady(port, { protocol: 1 });
    expect(a.info).toMatchObject({ max_payload: 1024 });
    // No debug log yet: a new connection is not logged.
    const quiet = await connectReady(port);
    quiet.close();
    expect(p.output()).not.toMatch(/\[DBG\]/);

    writeConfig(
      dir,
      "live.conf",
      `${base(port).replace("1KB", "4KB")}debug: true\nmax_subscriptions: 1\nping_interval: "1m"\nwrite_deadline: "3s"\nmax_pending: 32MB\nconnect_timeout: "4s"\n`,
    );
    expect(await reload(p, 1)).toBe("Reloaded server configuration");
    const out = p.output();
    for (const line of [
      "Reloaded: debug = true",
      "Reloaded: max_payload = 4096",
      "Reloaded: max_subscriptions = 1",
      "Reloaded: ping_interval = 1m0s",
      "Reloaded: write_deadline = 3s",
      "Reloaded: max_pending = 33554432",
      "Reloaded: connect_timeout = 4s",
    ]) {
      expect(out).toContain(line);
    }
    expect(conf).toBeTruthy();

    // The connected client is still there and can use the new payload limit.
    await a.flush();
    a.send("SUB big 1\r\n");
    await a.flush();
    const payload = "x".repeat(3000);
    a.send(`PUB big ${payload.length}\r\n${payload}\r\n`);
    const [msg] = await a.messages(1);
    expect(msg!.payload!.length).toBe(3000);

    // A new client sees the new max_payload in INFO, and is logged at debug level now.
    const b = await connectReady(port);
    expect(b.info).toMatchObject({ max_payload: 4096 });
    await p.waitForOutput(/\[DBG\] .*Client connection created/);
    // max_subscriptions applies to new SUBs.
    b.send("SUB s1 1\r\nSUB s2 2\r\n");
    await b.expect("-ERR 'maximum subscriptions exceeded'\r\n");
    expect(a.closed).toBe(false);
  });

  test("a bad file is logged and the running configuration stays", async () => {
    const { port, conf, p } = await start("bad.conf", (port) => `host: 127.0.0.1\nport: ${port}\nmax_payload: 2KB\n`);
    const a = await connectReady(port);
    writeConfig(dir, "bad.conf", `host: 127.0.0.1\nport: ${port}\nmax_payload: 8KB\nnot_a_key: 1\n`);
    expect(await reload(p, 1)).toBe("Failed to reload server configuration");
    expect(p.output()).toContain(`[ERR] Failed to reload server configuration: ${conf}:4:1: unknown field "not_a_key"`);
    writeConfig(dir, "bad.conf", "port: [unclosed\n");
    expect(await reload(p, 2)).toBe("Failed to reload server configuration");
    expect(p.output()).toMatch(/Failed to reload server configuration: .*bad\.conf:1:7: Parse error: Unexpected EOF processing array/);
    // Still running, the client still connected, the old limit still in force.
    await a.flush();
    const b = await connectRaw(port);
    expect(b.info).toMatchObject({ max_payload: 2048 });
    expect(p.child.exitCode).toBe(null);
  });

  test("a change that needs a restart (port, server_name, websocket) is refused as a whole and logged", async () => {
    const other = await freePort();
    const { port, p } = await start("restart.conf", (port) => `host: 127.0.0.1\nport: ${port}\nmax_payload: 2KB\n`);
    writeConfig(dir, "restart.conf", `host: 127.0.0.1\nport: ${other}\nmax_payload: 8KB\n`);
    expect(await reload(p, 1)).toBe("Failed to reload server configuration");
    expect(p.output()).toContain(`Failed to reload server configuration: config reload not supported for port: old=${port}, new=${other}`);
    writeConfig(dir, "restart.conf", `host: 127.0.0.1\nport: ${port}\nserver_name: renamed\n`);
    expect(await reload(p, 2)).toBe("Failed to reload server configuration");
    expect(p.output()).toContain("config reload not supported for server_name: old=, new=renamed");
    writeConfig(dir, "restart.conf", `host: 127.0.0.1\nport: ${port}\nwebsocket { port: ${other}, no_tls: true }\n`);
    expect(await reload(p, 3)).toBe("Failed to reload server configuration");
    expect(p.output()).toContain("config reload not supported for websocket port: old=0");
    // Nothing of those files was applied: max_payload is still 2KB.
    const c = await connectRaw(port);
    expect(c.info).toMatchObject({ max_payload: 2048 });
  });

  test("flags still win over the file after a reload", async () => {
    const { port, conf, p } = await start("flags.conf", (port) => `host: 127.0.0.1\nport: ${port}\nmax_payload: 1KB\n`, ["--max_payload", "3000"]);
    writeConfig(dir, "flags.conf", `host: 127.0.0.1\nport: ${port}\nmax_payload: 8KB\ntrace: true\n`);
    expect(await reload(p, 1)).toBe("Reloaded server configuration");
    expect(p.output()).toContain("Reloaded: trace = true");
    expect(p.output()).not.toContain("Reloaded: max_payload");
    const c = await connectRaw(port);
    expect(c.info).toMatchObject({ max_payload: 3000 });
    expect(conf).toBeTruthy();
  });

  test("without a config file there is nothing to reload", async () => {
    const port = await freePort();
    const p = spawnNatter(["-a", "127.0.0.1", "-p", String(port)]);
    await p.waitForOutput(/Server is ready/);
    expect(await reload(p, 1)).toBe("Failed to reload server configuration");
    expect(p.output()).toContain("can only reload config when a file is provided using -c or --config");
  });
});
