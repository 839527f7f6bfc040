import { describe, expect, test } from "vitest";
import { createServer, type Server as NetServer } from "node:net";
import { spawn } from "node:child_process";
import { resolve } from "node:path";

const repo = resolve(import.meta.dirname, "../..");
const bun = resolve(repo, "node_modules/.bin/bun");

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs natter with args and waits (with a deadline) for it to exit. */
function runNatter(args: string[], timeoutMs = 15_000): Promise<Exit> {
  return new Promise((done, fail) => {
    const child = spawn(bun, [resolve(repo, "src/main.ts"), ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      fail(new Error(`natter ${args.join(" ")} did not exit; stderr: ${stderr}`));
    }, timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

function listenOnFreePort(): Promise<NetServer> {
  return new Promise((done) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => done(server));
  });
}

describe("command line", () => {
  test.each([
    [["--bogus"], /^natter: flag provided but not defined: -bogus/],
    [["-p", "notaport"], /^natter: invalid value "notaport" for flag -p/],
    [["-p", "70000"], /not a port number/],
    [["--max_payload", "lots"], /not a size/],
    [["--ping_interval", "soon"], /not a duration/],
    [["--max_payload", "2MB", "--max_pending", "1MB"], /max_payload .* cannot be higher than max_pending/],
    [["-p"], /flag needs an argument: -p/],
    [["stray"], /unexpected argument: stray/],
  ])("refuses %j with one line and exit code 1", async (args, message) => {
    const result = await runNatter(args);
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split("\n");
    expect(lines.length).toBe(1);
    expect(lines[0]).toMatch(message);
  });

  test("a port in use ends with one line and exit code 1", async () => {
    const blocker = await listenOnFreePort();
    try {
      const port = (blocker.address() as { port: number }).port;
      const result = await runNatter(["-a", "127.0.0.1", "-p", String(port)]);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(new RegExp(`^natter: Error listening on port: 127\\.0\\.0\\.1:${port}, "listen tcp 127\\.0\\.0\\.1:${port}: bind: address already in use"\\n$`));
      expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
    } finally {
      blocker.close();
    }
  });

  test("--help lists nats-server's flag names and exits 0", async () => {
    const result = await runNatter(["--help"]);
    expect(result.code).toBe(0);
    for (const flag of ["-a, --addr", "-p, --port", "--ws_port", "-n, --server_name", "--max_payload", "-D, --debug", "-V, --trace"]) {
      expect(result.stdout).toContain(flag);
    }
  });

  test("--help names the bench subcommand", async () => {
    const result = await runNatter(["--help"]);
    expect(result.stdout).toMatch(/^ +natter bench <mode> \[options\] +Benchmark a NATS server/m);
  });

  test("a flag given twice: the later one wins (what `npm start -- --ws_port N` relies on)", async () => {
    const [first, second] = [await listenOnFreePort(), await listenOnFreePort()];
    const portOf = (s: NetServer) => (s.address() as { port: number }).port;
    const [wsFirst, wsSecond] = [portOf(first), portOf(second)];
    await Promise.all([first, second].map((s) => new Promise((done) => s.close(done))));
    const child = spawn(bun, [resolve(repo, "src/main.ts"), "-a", "127.0.0.1", "-p", "-1", "--ws_host", "127.0.0.1", "--ws_port", String(wsFirst), "--ws_port", String(wsSecond)], { stdio: ["ignore", "pipe", "pipe"] });
    try {
      let stderr = "";
      await new Promise<void>((ready, fail) => {
        const timer = setTimeout(() => fail(new Error(`not ready: ${stderr}`)), 15_000);
        child.stderr.on("data", (d) => {
          stderr += d;
          if (stderr.includes("Server is ready")) {
            clearTimeout(timer);
            ready();
          }
        });
      });
      expect(stderr).toContain(`Listening for websocket clients on ws://127.0.0.1:${wsSecond}\n`);
      expect(stderr).not.toContain(`:${wsFirst}\n`);
    } finally {
      child.kill("SIGKILL");
    }
  });

  test("--version names the nats-server version natter speaks", async () => {
    const result = await runNatter(["--version"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^natter: v\d+\.\d+\.\d+ \(speaks nats-server 2\.11\.0\)/);
  });

  test("SIGTERM stops a running server with exit code 0", async () => {
    const child = spawn(bun, [resolve(repo, "src/main.ts"), "-a", "127.0.0.1", "-p", "-1"], { stdio: ["ignore", "pipe", "pipe"] });
    try {
      let stderr = "";
      await new Promise<void>((ready, fail) => {
        const timer = setTimeout(() => fail(new Error(`not ready: ${stderr}`)), 15_000);
        child.stderr.on("data", (d) => {
          stderr += d;
          if (stderr.includes("Server is ready")) {
            clearTimeout(timer);
            ready();
          }
        });
      });
      expect(stderr).toMatch(/Listening for client connections on 127\.0\.0\.1:\d+/);
      const exited = new Promise<number | null>((done) => child.on("exit", (code) => done(code)));
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    } finally {
      child.kill("SIGKILL");
    }
  });
});
