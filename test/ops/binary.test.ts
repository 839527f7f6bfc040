// One binary: `npm run build` (bun build --compile) makes dist/natter, a single executable with the Bun
// runtime inside. This builds it (a few seconds), starts it on free ports and runs a pub/sub and
// request/reply smoke test with the `nats` client.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { connect, StringCodec } from "nats";
import { beforeAll, describe, expect, test } from "vitest";
import { BUN, REPO, freePort, spawnNatter, tempDir, waitFor } from "./proc.ts";

const BUILD_TIMEOUT_MS = 120_000;
const dir = tempDir();
// Built into this test's own directory (not dist/), so concurrent test runs never execute a half-written file.
const BINARY = path.join(dir, "bin", "natter");

/** `npm run build`'s command, with its --outfile pointed at BINARY. */
function buildArgs(): string[] {
  const pkg = JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8")) as { scripts: Record<string, string> };
  const words = pkg.scripts.build!.split(/\s+/);
  expect(words.slice(0, 3)).toEqual(["bun", "build", "--compile"]);
  const out = words.indexOf("--outfile");
  expect(words[out + 1]).toBe("dist/natter");
  words[out + 1] = BINARY;
  return words.slice(1);
}

describe("the compiled binary", () => {
  beforeAll(() => {
    const r = spawnSync(BUN, buildArgs(), {
      cwd: REPO,
      encoding: "utf8",
      timeout: BUILD_TIMEOUT_MS,
    });
    if (r.error) throw new Error(`bun build --compile failed to run within ${BUILD_TIMEOUT_MS} ms: ${r.error.message}`);
    if (r.status !== 0) throw new Error(`bun build --compile exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  }, BUILD_TIMEOUT_MS + 5_000);

  test("is one executable file", () => {
    expect(existsSync(BINARY)).toBe(true);
    const st = statSync(BINARY);
    expect(st.mode & 0o111).not.toBe(0);
    // For the README: the size of the binary (it carries the Bun runtime).
    console.log(`dist/natter: ${st.size} bytes (${(st.size / 1024 / 1024).toFixed(1)} MiB)`);
  });

  test("prints its version without bun or the sources", () => {
    const r = spawnSync(BINARY, ["--version"], { cwd: dir, encoding: "utf8", timeout: 15_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^natter: v\d+\.\d+\.\d+ \(speaks nats-server 2\.11\.0\)/);
  });

  test("serves clients: pub/sub and request/reply with the nats client; ports file named after the binary", async () => {
    const port = await freePort();
    const portsDir = path.join(dir, "ports");
    mkdirSync(portsDir);
    const p = spawnNatter(["-a", "127.0.0.1", "-p", String(port), "--ports_file_dir", portsDir], { command: [BINARY], cwd: dir });
    await p.waitForOutput(/Server is ready/);
    const portsFile = path.join(portsDir, `natter_${p.pid}.ports`);
    await waitFor(() => existsSync(portsFile), 5_000, "the ports file");
    expect(JSON.parse(readFileSync(portsFile, "utf8"))).toEqual({ nats: [`nats://127.0.0.1:${port}`] });

    const sc = StringCodec();
    const nc = await connect({ servers: `127.0.0.1:${port}`, reconnect: false, timeout: 5_000 });
    try {
      const sub = nc.subscribe("smoke.>", { max: 3 });
      const got: string[] = [];
      const done = (async () => {
        for await (const m of sub) got.push(`${m.subject}:${sc.decode(m.data)}`);
      })();
      nc.subscribe("svc.echo", { callback: (_e, m) => m.respond(m.data) });
      for (let i = 0; i < 3; i++) nc.publish(`smoke.${i}`, sc.encode(`m${i}`));
      await done;
      expect(got).toEqual(["smoke.0:m0", "smoke.1:m1", "smoke.2:m2"]);
      const reply = await nc.request("svc.echo", sc.encode("ping"), { timeout: 5_000 });
      expect(sc.decode(reply.data)).toBe("ping");
      expect(nc.info?.version).toBe("2.11.0");
    } finally {
      await nc.close();
    }
    p.signal("SIGTERM");
    expect((await p.waitForExit()).code).toBe(0);
    expect(existsSync(portsFile)).toBe(false);
  });
});
