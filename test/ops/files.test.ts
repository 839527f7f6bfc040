// The files an operated natter writes: the ports file (--ports_file_dir, removed at exit), the pid file (-P),
// and the log file (-l), with or without timestamps (-T).
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { connectReady, freePort, spawnNatter, tempDir, waitFor, writeConfig } from "./proc.ts";

const dir = tempDir();

describe("ports file", () => {
  test("<exe>_<pid>.ports lists every listener's URL as nats-server writes it, and is removed at exit", async () => {
    const portsDir = path.join(dir, "ports");
    mkdirSync(portsDir);
    const [port, http, ws] = [await freePort(), await freePort(), await freePort()];
    const p = spawnNatter(["-a", "127.0.0.1", "-p", String(port), "-m", String(http), "--ws_port", String(ws), "--ws_host", "127.0.0.1", "--ports_file_dir", portsDir]);
    await p.waitForOutput(/Server is ready/);
    const file = path.join(portsDir, `natter_${p.pid}.ports`);
    await waitFor(() => existsSync(file), 5_000, "the ports file");
    // Byte for byte what Go's json.Marshal of nats-server's Ports struct gives.
    expect(readFileSync(file, "utf8")).toBe(
      `{"nats":["nats://127.0.0.1:${port}"],"monitoring":["http://127.0.0.1:${http}"],"websocket":["ws://127.0.0.1:${ws}"]}`,
    );
    p.signal("SIGTERM");
    expect((await p.waitForExit()).code).toBe(0);
    expect(existsSync(file)).toBe(false);
  });

  test("a wildcard bind address lists the interface addresses; set in the config file", async () => {
    const portsDir = path.join(dir, "ports2");
    mkdirSync(portsDir);
    const port = await freePort();
    const conf = writeConfig(dir, "ports.conf", `listen: "0.0.0.0:${port}"\nports_file_dir: "${portsDir}"\n`);
    const p = spawnNatter(["-c", conf]);
    await p.waitForOutput(/Server is ready/);
    const file = path.join(portsDir, `natter_${p.pid}.ports`);
    await waitFor(() => existsSync(file), 5_000, "the ports file");
    const ports = JSON.parse(readFileSync(file, "utf8")) as Record<string, string[]>;
    expect(Object.keys(ports)).toEqual(["nats"]);
    expect(ports.nats).toContain(`nats://127.0.0.1:${port}`);
    // SIGINT stops it as well, and the file goes.
    p.signal("SIGINT");
    expect((await p.waitForExit()).code).toBe(0);
    expect(existsSync(file)).toBe(false);
  });
});

describe("pid file", () => {
  test("-P writes the process id (kept after exit, as nats-server keeps it)", async () => {
    const pidFile = path.join(dir, "natter.pid");
    const port = await freePort();
    const p = spawnNatter(["-a", "127.0.0.1", "-p", String(port), "-P", pidFile]);
    await p.waitForOutput(/Server is ready/);
    await waitFor(() => existsSync(pidFile), 5_000, "the pid file");
    expect(readFileSync(pidFile, "utf8")).toBe(String(p.pid));
    p.signal("SIGTERM");
    await p.waitForExit();
    expect(existsSync(pidFile)).toBe(true);
  });
});

describe("log file", () => {
  test("-l appends the log to a file instead of stderr, timestamped by default", async () => {
    const logFile = path.join(dir, "natter.log");
    writeFileSync(logFile, "earlier line\n");
    const port = await freePort();
    const p = spawnNatter(["-a", "127.0.0.1", "-p", String(port), "-l", logFile, "-D"]);
    await waitFor(() => existsSync(logFile) && readFileSync(logFile, "utf8").includes("Server is ready"), 15_000, "Server is ready in the log file");
    await connectReady(port);
    await waitFor(() => readFileSync(logFile, "utf8").includes("Client connection created"), 5_000, "the debug line");
    p.signal("SIGTERM");
    expect((await p.waitForExit()).code).toBe(0);
    const text = readFileSync(logFile, "utf8");
    expect(text.startsWith("earlier line\n")).toBe(true);
    const lines = text.trim().split("\n").slice(1);
    for (const line of lines) expect(line).toMatch(/^\[\d+\] \d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d\.\d{6} \[(INF|DBG|WRN|ERR)\] /);
    expect(text).toContain("Server Exiting..");
    expect(p.output()).not.toContain("Server is ready");
  });

  test("-T=false (or logtime: false in the file) drops the timestamps", async () => {
    const logFile = path.join(dir, "plain.log");
    const port = await freePort();
    const conf = writeConfig(dir, "log.conf", `host: 127.0.0.1\nport: ${port}\nlog_file: "${logFile}"\nlogtime: false\n`);
    const p = spawnNatter(["-c", conf]);
    await waitFor(() => existsSync(logFile) && readFileSync(logFile, "utf8").includes("Server is ready"), 15_000, "Server is ready in the log file");
    p.signal("SIGTERM");
    await p.waitForExit();
    for (const line of readFileSync(logFile, "utf8").trim().split("\n")) expect(line).toMatch(/^\[\d+\] \[(INF|DBG|WRN|ERR)\] /);

    const port2 = await freePort();
    const q = spawnNatter(["-a", "127.0.0.1", "-p", String(port2), "-T=false"]);
    await q.waitForOutput(/Server is ready/);
    expect(q.output()).toMatch(/^\[\d+\] \[INF\] Starting natter/);
  });

  test("SIGUSR1 reopens the log file (after rotation moved it away)", async () => {
    const logFile = path.join(dir, "rotate.log");
    const port = await freePort();
    const p = spawnNatter(["-a", "127.0.0.1", "-p", String(port), "-l", logFile]);
    await waitFor(() => existsSync(logFile) && readFileSync(logFile, "utf8").includes("Server is ready"), 15_000, "Server is ready in the log file");
    renameSync(logFile, `${logFile}.1`);
    p.signal("SIGUSR1");
    await waitFor(() => existsSync(logFile) && readFileSync(logFile, "utf8").includes("File log re-opened"), 5_000, "the reopened log");
    expect(readFileSync(`${logFile}.1`, "utf8")).toContain("Server is ready");
  });
});
