// The other platforms' binaries, booted where this machine can run them (scripts/foreign.ts):
//   natter-linux-arm64      under qemu-aarch64-static with Debian's aarch64 glibc (libc6-arm64-cross);
//   natter-linux-x64-musl   with Debian's musl loader; its libstdc++/libgcc_s are Debian's glibc builds
//                           made loadable by scripts/musl-glibc-shim.c (Debian has no musl libstdc++).
// natter-linux-arm64-musl is built by `npm run build` but not run here (no aarch64 musl loader in Debian).
// Each: built once (cached in dist/ by a hash of its inputs), started on free ports with JetStream on disk,
// a real client publishes and receives, a file stream takes messages that are found in the store's files,
// --healthcheck answers, SIGTERM ends it with exit 0, and a restart on the same store finds the messages;
// a cluster node shows the gossip worker (a second entry point) runs from inside the binary.
// Without qemu or musl (.ci/run installs them) the target's test is skipped with a message.
import { spawnSync } from "node:child_process";
import { readFileSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { connect, StorageType, StringCodec, type NatsConnection } from "nats";
import { beforeAll, describe, expect, test } from "vitest";
import { buildTarget, type Target } from "../../scripts/build.ts";
import { runnerFor } from "../../scripts/foreign.ts";
import { REPO, freePort, spawnNatter, tempDir } from "./proc.ts";
import { COMPATIBLE_NATS_VERSION } from "../../src/server.ts";

// Emulation is slow (a start is ~1 s under qemu on an idle machine; a busy 2-core machine can make it 10×).
const BUILD_TIMEOUT_MS = 180_000;
const START_TIMEOUT_MS = 60_000;
const TEST_TIMEOUT_MS = 180_000;
const sc = StringCodec();

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? filesUnder(p) : [p];
  });
}

for (const target of ["linux-arm64", "linux-x64-musl"] as Target[]) {
  const binary = path.join(REPO, "dist", `natter-${target}`);
  const runner = runnerFor(target, binary);
  if ("skip" in runner) console.warn(`platforms: natter-${target} is not run here: ${runner.skip}`);

  describe.skipIf("skip" in runner)(`natter-${target}`, () => {
    const command = "skip" in runner ? [] : runner.command;
    const dir = tempDir("natter-platform-");

    beforeAll(() => {
      const built = buildTarget(target);
      console.log(`natter-${target}: ${built.cached ? "unchanged, kept" : `built in ${(built.ms / 1000).toFixed(1)} s`}; run ${"how" in runner ? runner.how : ""}`);
    }, BUILD_TIMEOUT_MS);

    test("names its platform in -v", () => {
      const r = spawnSync(command[0]!, [...command.slice(1), "-v"], { encoding: "utf8", timeout: START_TIMEOUT_MS });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^natter: v\\d+\\.\\d+\\.\\d+ \\(speaks nats-server ${COMPATIBLE_NATS_VERSION.replaceAll(".", "\\.")}\\) ${target}\\n$`));
    }, TEST_TIMEOUT_MS);

    test("boots, serves pub/sub, writes a file stream to disk, answers --healthcheck, stops on SIGTERM with exit 0, restarts with its messages", async () => {
      const store = path.join(dir, "store");
      const [port, monitor] = [await freePort(), await freePort()];
      const args = ["-a", "127.0.0.1", "-p", String(port), "-m", String(monitor), "--http_host", "127.0.0.1", "-js", "-sd", store];
      const p = spawnNatter(args, { command, cwd: dir });
      await p.waitForOutput(/Server is ready/, START_TIMEOUT_MS);

      let nc: NatsConnection | null = await connect({ servers: `127.0.0.1:${port}`, reconnect: false, timeout: 20_000 });
      try {
        const sub = nc.subscribe("device.>", { max: 3 });
        const got: string[] = [];
        const done = (async () => {
          for await (const m of sub) got.push(`${m.subject}:${sc.decode(m.data)}`);
        })();
        for (let i = 0; i < 3; i++) nc.publish(`device.${i}`, sc.encode(`reading-${i}`));
        await done;
        expect(got).toEqual(["device.0:reading-0", "device.1:reading-1", "device.2:reading-2"]);

        const jsm = await nc.jetstreamManager({ timeout: 20_000 });
        await jsm.streams.add({ name: "TELEMETRY", subjects: ["telemetry.>"], storage: StorageType.File });
        const js = nc.jetstream({ timeout: 20_000 });
        for (let i = 1; i <= 5; i++) expect((await js.publish(`telemetry.t${i}`, sc.encode(`on-disk-${target}-${i}`))).seq).toBe(i);
        expect((await jsm.streams.info("TELEMETRY")).state.messages).toBe(5);
      } finally {
        await nc.close();
        nc = null;
      }
      // The payloads are in the store's files (not only in memory).
      const stored = filesUnder(store).filter((f) => statSync(f).isFile()).map((f) => readFileSync(f).toString("latin1")).join("");
      expect(stored).toContain(`on-disk-${target}-5`);

      // The container image's HEALTHCHECK: the binary asks /healthz of the running server.
      const health = spawnSync(command[0]!, [...command.slice(1), "--healthcheck", `http://127.0.0.1:${monitor}/healthz`], { encoding: "utf8", timeout: START_TIMEOUT_MS });
      expect(health.status, health.stderr).toBe(0);

      p.signal("SIGTERM");
      expect(await p.waitForExit(START_TIMEOUT_MS)).toEqual({ code: 0, signal: null });
      const down = spawnSync(command[0]!, [...command.slice(1), "--healthcheck", `http://127.0.0.1:${monitor}/healthz`], { encoding: "utf8", timeout: START_TIMEOUT_MS });
      expect(down.status).toBe(1);

      const again = spawnNatter(args, { command, cwd: dir });
      await again.waitForOutput(/Server is ready/, START_TIMEOUT_MS);
      nc = await connect({ servers: `127.0.0.1:${port}`, reconnect: false, timeout: 20_000 });
      try {
        const jsm = await nc.jetstreamManager({ timeout: 20_000 });
        expect((await jsm.streams.info("TELEMETRY")).state.messages).toBe(5);
        expect(sc.decode((await jsm.streams.getMessage("TELEMETRY", { seq: 5 })).data)).toBe(`on-disk-${target}-5`);
      } finally {
        await nc.close();
      }
      again.signal("SIGTERM");
      expect(await again.waitForExit(START_TIMEOUT_MS)).toEqual({ code: 0, signal: null });
    }, TEST_TIMEOUT_MS);

    test("carries the gossip worker: a cluster node runs gossip on its own thread", async () => {
      const [port, cluster] = [await freePort(), await freePort()];
      const p = spawnNatter(["-a", "127.0.0.1", "-p", String(port), "--cluster", `nats://127.0.0.1:${cluster}`, "--cluster_name", "edge", "-D"], { command, cwd: dir });
      await p.waitForOutput(/Server is ready/, START_TIMEOUT_MS);
      // Without the worker inside the binary this says "gossip runs on the event loop (no gossip thread: …)".
      await p.waitForOutput(/Cluster: gossip runs on its own thread/, START_TIMEOUT_MS);
      p.signal("SIGTERM");
      expect(await p.waitForExit(START_TIMEOUT_MS)).toEqual({ code: 0, signal: null });
    }, TEST_TIMEOUT_MS);
  });
}
