// natter started with a config file (-c): the settings reach clients, flags win over the file, and a bad file
// ends the process at once with exit code 1 and nats-server's message.
import { existsSync } from "node:fs";
import path from "node:path";
import { describe, expect, test } from "vitest";
import { connectRaw, freePort, runNatter, spawnNatter, tempDir, writeConfig } from "./proc.ts";

const dir = tempDir();
const NATS_SERVER = ["/usr/bin/nats-server", "/usr/sbin/nats-server"].find((p) => existsSync(p)) ?? "";

describe("a config file at start", () => {
  test("its max_payload and server_name show in INFO", async () => {
    const port = await freePort();
    const conf = writeConfig(dir, "payload.conf", `# limits\nhost: 127.0.0.1\nport: ${port}\nmax_payload: 64KB\nserver_name: "from-file"\n`);
    const p = spawnNatter(["-c", conf]);
    await p.waitForOutput(/Server is ready/);
    const c = await connectRaw(port);
    expect(c.info).toMatchObject({ max_payload: 65536, server_name: "from-file", port });
    // Logged where nats-server logs it: after the server's ID, before the listeners and "Server is ready".
    expect(p.output()).toMatch(new RegExp(`ID: +\\w+\\n[^\\n]*Using configuration file: ${conf.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\n`));
  });

  test("command-line flags override the file; the file's other settings stay", async () => {
    const [filePort, flagPort] = [await freePort(), await freePort()];
    const conf = writeConfig(dir, "override.conf", `listen: "127.0.0.1:${filePort}"\nmax_payload: 64KB\nserver_name: file-name\n`);
    const p = spawnNatter(["-c", conf, "-p", String(flagPort), "--max_payload", "2048"]);
    await p.waitForOutput(/Server is ready/);
    expect(p.output()).toContain(`Listening for client connections on 127.0.0.1:${flagPort}`);
    const c = await connectRaw(flagPort);
    expect(c.info).toMatchObject({ max_payload: 2048, server_name: "file-name" });
  });

  test("variables from the file and the environment, and includes relative to the including file", async () => {
    const port = await freePort();
    // An included file's keys join the including file (its $variables are its own, as in nats-server).
    writeConfig(dir, "limits.inc", "PAYLOAD: 32KB\nmax_pending: 1MB\n");
    const conf = writeConfig(dir, "vars.conf", `include ./limits.inc\nhost: 127.0.0.1\nport: $NATTER_TEST_PORT\nmax_payload: $PAYLOAD\n`);
    // Started from another directory: the include is found next to vars.conf all the same.
    const p = spawnNatter(["-c", conf], { cwd: "/", env: { ...process.env, NATTER_TEST_PORT: String(port) } });
    await p.waitForOutput(/Server is ready/);
    const c = await connectRaw(port);
    expect(c.info).toMatchObject({ max_payload: 32 * 1024 });
  });

  test("an unknown key: one line `natter: <file>:<line>:<col>: unknown field \"bogus_key\"`, exit code 1", async () => {
    const conf = writeConfig(dir, "bogus.conf", "port: 4222\n# a comment\n\nbogus_key: 1\n");
    const r = await runNatter(["-c", conf]);
    expect(r.code).toBe(1);
    expect(r.output).toBe(`natter: ${conf}:4:1: unknown field "bogus_key"\n`);
  });

  test.skipIf(!NATS_SERVER)("nats-server prints the same message for that file", async () => {
    const conf = writeConfig(dir, "bogus2.conf", "port: 4222\n# a comment\n\nbogus_key: 1\n");
    const ours = await runNatter(["-c", conf]);
    const theirs = spawnNatter(["-c", conf], { command: [NATS_SERVER] });
    const exit = await theirs.waitForExit();
    expect(exit.code).toBe(1);
    const strip = (s: string, prog: string) => s.trim().replace(new RegExp(`^${prog}: `), "");
    expect(strip(ours.output, "natter")).toBe(strip(theirs.output(), "nats-server"));
  });

  test("a key natter does not support yet is refused, not ignored", async () => {
    const conf = writeConfig(dir, "gateway.conf", "port: 4222\ngateway {\n  port: 7222\n}\n");
    const r = await runNatter(["-c", conf]);
    expect(r.code).toBe(1);
    expect(r.output).toBe(`natter: ${conf}:2:1: "gateway" is not supported yet\n`);
  });

  test("a syntax error names file, line and column", async () => {
    const conf = writeConfig(dir, "syntax.conf", "port: 4222\nmax_payload: [1, 2\n");
    const r = await runNatter(["-c", conf]);
    expect(r.code).toBe(1);
    expect(r.output).toMatch(new RegExp(`^natter: ${conf.replace(/[.]/g, "\\.")}:2:14: Parse error: Unexpected EOF processing array\\.\\n$`));
  });

  test("a missing file", async () => {
    const conf = path.join(dir, "absent.conf");
    const r = await runNatter(["-c", conf]);
    expect(r.code).toBe(1);
    expect(r.output).toBe(`natter: open ${conf}: no such file or directory\n`);
  });

  test("lame_duck_duration under 30s is refused, in the file and as a flag", async () => {
    const conf = writeConfig(dir, "ldm.conf", 'lame_duck_duration: "10s"\n');
    const r = await runNatter(["-c", conf]);
    expect(r.code).toBe(1);
    expect(r.output).toBe(`natter: ${conf}:1:1: invalid lame_duck_duration of 10s, minimum is 30 seconds\n`);
    const f = await runNatter(["--lame_duck_duration", "10s"]);
    expect(f.code).toBe(1);
    expect(f.output).toMatch(/^natter: invalid lame_duck_duration of 10s, minimum is 30 seconds/);
  });

  test("-t checks the file and exits", async () => {
    const good = writeConfig(dir, "good.conf", "port: 4222\nmax_payload: 1MB\n");
    const ok = await runNatter(["-t", "-c", good]);
    expect(ok.code).toBe(0);
    expect(ok.output).toBe(`natter: configuration file ${good} is valid\n`);
    const bad = writeConfig(dir, "bad.conf", "nope: 1\n");
    const ko = await runNatter(["-t", "-c", bad]);
    expect(ko.code).toBe(1);
    expect(ko.output).toBe(`natter: ${bad}:1:1: unknown field "nope"\n`);
  });

  test("a duration given as a number of seconds starts with nats-server's warning", async () => {
    const port = await freePort();
    const conf = writeConfig(dir, "warn.conf", `host: 127.0.0.1\nport: ${port}\nping_interval: 30\n`);
    const p = spawnNatter(["-c", conf]);
    await p.waitForOutput(/Server is ready/);
    expect(p.output()).toContain(`${conf}:3:1: invalid use of field "ping_interval": ping_interval should be converted to a duration`);
  });
});
