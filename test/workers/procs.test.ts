// `natter --procs N` (src/workers/): a supervisor and N worker processes on one client port
// (SO_REUSEPORT), joined by loopback routes. Real processes, the official nats.js client: the kernel
// spreads clients over the workers (told apart by INFO server_id); messages, queue groups and
// request-reply cross workers; a worker killed with -9 is restarted and its clients come back; signals
// reach every worker and no process is left behind; options that cannot work are refused.
import { afterAll, describe, expect, test } from "vitest";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import * as nats from "nats";
import { freePort } from "../harness/server.ts";
import { waitFor } from "../cluster/spawn.ts";
import { defaultOptions, OptionsError, parseCommandLine, type Options } from "../../src/options.ts";
import { applyConfig } from "../../src/config/apply.ts";
import { parseConfig } from "../../src/config/parser.ts";
import { HOST, alive, clientsOnTwoWorkers, connect, runToExit, sc, serverIdOf, startProcs, stopAll, subscribeReady } from "./procs-harness.ts";

const tmp = mkdtempSync(path.join(os.tmpdir(), "natter-procs-"));
afterAll(async () => {
  await stopAll();
  rmSync(tmp, { recursive: true, force: true });
});

describe("natter --procs 2", () => {
  test("the kernel spreads clients over both workers; pub/sub, queue groups and request-reply cross workers", async () => {
    const p = await startProcs(["--ws_port", String(await freePort())]);
    expect(p.workers()).toHaveLength(2);
    const [a, b, ids] = await clientsOnTwoWorkers(p.port);

    // Publisher on one worker, subscriber on the other: every message once, in order.
    const got = await subscribeReady(b, a, "cross.>");
    for (let i = 0; i < 200; i++) a.publish("cross.x", sc.encode(String(i)));
    await a.flush();
    await waitFor("200 messages across workers", () => got.length >= 200);
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toEqual(Array.from({ length: 200 }, (_, i) => String(i)));

    // A queue group with a member on each worker: each message to exactly one member. (B's member first:
    // once A has a member, A's probes stay local, as queue groups prefer local members.)
    const qb = await subscribeReady(b, a, "q.>", "workers");
    const qa = await subscribeReady(a, a, "q.>", "workers");
    const [c] = await clientsOnTwoWorkers(p.port);
    for (let i = 0; i < 300; i++) c.publish("q.x", sc.encode(String(i)));
    await c.flush();
    await waitFor("300 queue messages", () => qa.length + qb.length >= 300);
    await new Promise((r) => setTimeout(r, 150));
    const all = [...qa, ...qb];
    expect(all).toHaveLength(300);
    expect(new Set(all).size).toBe(300);

    // Request-reply: responder on one worker, requester on the other.
    b.subscribe("svc.echo", { callback: (_e, m) => m.respond(sc.encode(`echo ${sc.decode(m.data)} from ${serverIdOf(b)}`)) });
    await b.flush();
    await waitFor("the service to be reachable from the other worker", async () => {
      try {
        const reply = await a.request("svc.echo", sc.encode("hi"), { timeout: 500 });
        return sc.decode(reply.data) === `echo hi from ${serverIdOf(b)}`;
      } catch {
        return false;
      }
    });

    // Monitoring is worker 0's: its /varz is one of the two, with one route (to the other worker).
    const varz = (await (await fetch(`http://${HOST}:${p.httpPort}/varz`)).json()) as { server_id: string; routes: number };
    expect(ids.has(varz.server_id)).toBe(true);
    expect(varz.routes).toBe(1);
  }, 60_000);

  test("kill -9 of a worker: the supervisor starts it again and its clients reconnect", async () => {
    const p = await startProcs();
    const reconnecting: nats.ConnectionOptions = { reconnect: true, maxReconnectAttempts: -1, reconnectTimeWait: 100, reconnectJitter: 0 };
    const [a, b] = await clientsOnTwoWorkers(p.port, reconnecting);
    const victim = p.pidOf(serverIdOf(a));
    const before = p.workers();
    expect(before).toContain(victim);

    let reconnected = false;
    void (async () => {
      for await (const s of a.status()) if (s.type === nats.Events.Reconnect) reconnected = true;
    })();
    process.kill(victim, "SIGKILL");
    await waitFor("the supervisor to restart the worker", () => {
      const now = p.workers();
      return now.length === 2 && !now.includes(victim);
    }, 15_000, p.log);
    expect(p.log()).toMatch(new RegExp(`Worker \\d \\(pid ${victim}\\) exited \\(signal SIGKILL\\): restarting it in \\d+ ms`));
    await waitFor("the client of the killed worker to reconnect", () => reconnected, 15_000);

    // Traffic flows again between the reconnected client and the other worker's client (both ways).
    const onB = await subscribeReady(b, a, "after.>");
    a.publish("after.x", sc.encode("back"));
    await a.flush();
    await waitFor("a message after the restart", () => onB.includes("back"));
    const onA = await subscribeReady(a, b, "back.>");
    b.publish("back.x", sc.encode("again"));
    await b.flush();
    await waitFor("a message the other way", () => onA.includes("again"));
    await a.close();
    await b.close();
    p.child.kill("SIGTERM");
    expect(await p.exited).toBe(0);
  }, 60_000);

  test("SIGTERM to the supervisor stops every worker and exits 0; the pid file holds the supervisor's pid", async () => {
    const pidFile = path.join(tmp, "natter.pid");
    const p = await startProcs(["-P", pidFile, "--ports_file_dir", tmp]);
    expect(readFileSync(pidFile, "utf8").trim()).toBe(String(p.child.pid));
    const portsFile = path.join(tmp, `natter_${p.child.pid}.ports`);
    expect(JSON.parse(readFileSync(portsFile, "utf8")).nats).toEqual([`nats://${HOST}:${p.port}`]);
    const workers = p.workers();
    expect(workers).toHaveLength(2);
    const nc = await connect(p.port);
    const closed = nc.closed();
    p.child.kill("SIGTERM");
    expect(await p.exited).toBe(0);
    await closed;
    for (const pid of workers) expect(alive(pid), `worker ${pid} left behind`).toBe(false);
    expect(() => readFileSync(portsFile)).toThrow();
    expect(p.log().match(/Trapped "terminated" signal/g)).toHaveLength(2);
  }, 30_000);

  test("kill -9 of the supervisor: the workers notice and exit", async () => {
    const p = await startProcs();
    const workers = p.workers();
    expect(workers).toHaveLength(2);
    p.child.kill("SIGKILL");
    await p.exited;
    await waitFor("the orphaned workers to exit", () => workers.every((pid) => !alive(pid)), 10_000, p.log);
    expect(p.log()).toMatch(/Supervisor \(pid \d+\) is gone: shutting down/);
  }, 30_000);

  test("SIGUSR2 (lame duck) reaches every worker; without clients they exit at once and so does the supervisor", async () => {
    const p = await startProcs();
    const workers = p.workers();
    expect(workers).toHaveLength(2);
    p.child.kill("SIGUSR2");
    expect(await p.exited, p.log()).toBe(0);
    expect(p.log(), p.log()).toMatch(/Entering lame duck mode/);
    for (const pid of workers) expect(alive(pid), p.log()).toBe(false);
  }, 30_000);

  test("SIGHUP reaches every worker: each reloads the config file", async () => {
    const conf = path.join(tmp, "reload.conf");
    writeFileSync(conf, "procs: 2\nmax_payload: 1MB\n");
    const p = await startProcs(["-c", conf]);
    writeFileSync(conf, "procs: 2\nmax_payload: 512KB\n");
    p.child.kill("SIGHUP");
    await waitFor("both workers to reload", () => (p.log().match(/Reloaded server configuration/g) ?? []).length === 2, 10_000, p.log);
    expect(p.log()).not.toMatch(/Failed to reload/);
    const nc = await connect(p.port);
    expect(nc.info?.max_payload).toBe(512 * 1024);
  }, 30_000);
});

describe("procs: the flag and the config key", () => {
  function applied(text: string): number {
    const options: Options = { ...defaultOptions, wsAllowedOrigins: [] };
    applyConfig(parseConfig(text, "t.conf"), options, "t.conf");
    return options.procs;
  }

  test("a number, auto (one per CPU), and 1 by default", () => {
    expect(defaultOptions.procs).toBe(1);
    expect(applied("procs: 4")).toBe(4);
    expect(applied('procs: "auto"')).toBe(os.availableParallelism());
    const parsed = parseCommandLine(["--procs", "auto"]);
    expect(parsed.kind === "run" && parsed.options.procs).toBe(os.availableParallelism());
    expect(() => parseCommandLine(["--procs=0"])).toThrow(OptionsError);
  });

  test("a bad value in the file is an error at its position", () => {
    expect(() => applied("procs: 0")).toThrow(/t\.conf:1:1: procs must be a number of processes \(1 to 1024\) or "auto", got integer 0/);
    expect(() => applied('procs: "lots"')).toThrow(/procs must be a number of processes/);
  });
});

describe("--procs: refused combinations and values end with one line and exit 1", () => {
  const run = runToExit;

  const cases: [string, string[], RegExp][] = [
    ["a cluster and leaf nodes", ["--procs", "2", "--cluster", "nats://127.0.0.1:-1", "--leafnodes_listen", "127.0.0.1:-1"], /^natter: --procs cannot be combined with both a cluster and leaf nodes/],
    ["zero", ["--procs", "0"], /^natter: invalid value "0" for flag -procs/],
    ["not a number", ["--procs", "many"], /^natter: invalid value "many" for flag -procs/],
  ];
  for (const [what, args, message] of cases) {
    test(what, async () => {
      const r = await run(["-a", HOST, "-p", "-1", ...args]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
    });
  }

  test("a client port already in use (also by another natter --procs)", async () => {
    const held = net.createServer();
    await new Promise<void>((r) => held.listen(0, HOST, () => r()));
    const port = (held.address() as net.AddressInfo).port;
    const r = await run(["--procs", "2", "-a", HOST, "-p", String(port)]);
    held.close();
    expect(r.code).toBe(1);
    expect(r.stderr.trimEnd().split("\n")).toEqual([`natter: Error listening on port: ${HOST}:${port}, "listen tcp ${HOST}:${port}: bind: address already in use"`]);

    const p = await startProcs();
    const again = await run(["--procs", "2", "-a", HOST, "-p", String(p.port)]);
    expect(again.code).toBe(1);
    expect(again.stderr.trimEnd().split("\n")).toEqual([`natter: Error listening on port: ${HOST}:${p.port}, "listen tcp ${HOST}:${p.port}: bind: address already in use"`]);
    p.child.kill("SIGTERM");
    expect(await p.exited).toBe(0);
  }, 30_000);
});
