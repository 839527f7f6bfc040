// One binary: `npm run build` (scripts/build.ts: bun build --compile) makes dist/natter-<platform> and
// dist/natter (this machine's), single executables with the Bun runtime inside. This builds this
// machine's (a few seconds), starts it on free ports and runs a pub/sub and request/reply smoke test
// with the `nats` client. Other platforms' binaries: platforms.test.ts.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { connect, StringCodec } from "nats";
import { beforeAll, describe, expect, test } from "vitest";
import { BUN, REPO, freePort, spawnNatter, tempDir, waitFor } from "./proc.ts";
import { hostTarget } from "../../scripts/build.ts";

const BUILD_TIMEOUT_MS = 120_000;
const dir = tempDir();
// Built into this test's own directory (not dist/), so concurrent test runs never execute a half-written file.
const BUILT = path.join(dir, "bin", `natter-${hostTarget()}`);
// What is run: bin/natter, the copy of BUILT the build makes (as dist/natter), so the ports file is natter_<pid>.ports.
const BINARY = path.join(dir, "bin", "natter");

describe("the compiled binary", () => {
  beforeAll(() => {
    // `npm run build`'s script, for this machine's target only.
    const pkg = JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8")) as { scripts: Record<string, string> };
    expect(pkg.scripts.build).toBe("bun scripts/build.ts");
    const r = spawnSync(BUN, ["scripts/build.ts", "--target", "host", "--outdir", path.join(dir, "bin")], {
      cwd: REPO,
      encoding: "utf8",
      timeout: BUILD_TIMEOUT_MS,
    });
    if (r.error) throw new Error(`scripts/build.ts failed to run within ${BUILD_TIMEOUT_MS} ms: ${r.error.message}`);
    if (r.status !== 0) throw new Error(`scripts/build.ts exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  }, BUILD_TIMEOUT_MS + 5_000);

  test("is one executable file", () => {
    expect(existsSync(BUILT)).toBe(true);
    const st = statSync(BUILT);
    expect(st.mode & 0o111).not.toBe(0);
    // For the README: the size of the binary (it carries the Bun runtime).
    console.log(`natter-${hostTarget()}: ${st.size} bytes (${(st.size / 1024 / 1024).toFixed(1)} MiB)`);
    // dist/natter is the host's binary, and SHA256SUMS lists it in sha256sum's format.
    expect(readFileSync(BINARY).equals(readFileSync(BUILT))).toBe(true);
    const sums = readFileSync(path.join(dir, "bin", "SHA256SUMS"), "utf8");
    const sha = createHash("sha256").update(readFileSync(BUILT)).digest("hex");
    expect(sums).toBe(`${sha}  natter-${hostTarget()}\n`);
  });

  test("prints its version without bun or the sources", () => {
    const r = spawnSync(BINARY, ["--version"], { cwd: dir, encoding: "utf8", timeout: 15_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^natter: v\d+\.\d+\.\d+ \(speaks nats-server 2\.11\.0\) /);
    expect(r.stdout.endsWith(`2.11.0) ${hostTarget()}\n`)).toBe(true); // the platform it was built for
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

  test("--healthcheck URL: exit 0 while /healthz answers 200; exit 1 with the reason when nothing answers", async () => {
    const [port, monitor] = [await freePort(), await freePort()];
    const url = `http://127.0.0.1:${monitor}/healthz`;
    const p = spawnNatter(["-a", "127.0.0.1", "-p", String(port), "-m", String(monitor)], { command: [BINARY], cwd: dir });
    await p.waitForOutput(/Server is ready/);
    const up = spawnSync(BINARY, ["--healthcheck", url], { encoding: "utf8", timeout: 15_000 });
    expect(up.status, up.stderr).toBe(0);
    expect(up.stdout + up.stderr).toBe("");
    p.signal("SIGTERM");
    expect((await p.waitForExit()).code).toBe(0);
    const down = spawnSync(BINARY, ["--healthcheck", url], { encoding: "utf8", timeout: 15_000 });
    expect(down.status).toBe(1);
    expect(down.stderr).toMatch(new RegExp(`^natter: ${url.replace(/[.]/g, "\\.")}: .+\n$`));
  });
});
