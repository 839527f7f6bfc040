// bin/natter (and `npm start`) runs a bundle of the sources, made by scripts/run-bundle.ts into dist/run/<key>
// at the first start after an edit (issue 20: ~2 MiB less idle RSS than src/main.ts's ~80 modules). Started
// here as a user starts it: the process runs the bundle, serves clients, and what the bundle leaves to the
// sources (the gossip worker, the console's UI) works from it. The rest of the suite runs src/main.ts.
import { readFileSync } from "node:fs";
import path from "node:path";
import { connect, StringCodec } from "nats";
import { describe, expect, test } from "vitest";
import { REPO, freePort, spawnNatter, tempDir, writeConfig } from "./proc.ts";

const NATTER = path.join(REPO, "bin", "natter");
// The first start may bundle (~0.1–0.3 s, more on a busy machine).
const START_TIMEOUT_MS = 30_000;

describe("bin/natter", () => {
  test("runs dist/run/<key>/main.js, a bundle of the sources, and serves pub/sub and request/reply", async () => {
    const port = await freePort();
    const p = spawnNatter(["-a", "127.0.0.1", "-p", String(port)], { command: [NATTER] });
    await p.waitForOutput(/Server is ready/, START_TIMEOUT_MS);
    const argv = readFileSync(`/proc/${p.pid}/cmdline`, "utf8").split("\0");
    expect(argv.find((a) => a.endsWith("main.js"))).toMatch(new RegExp(`^${REPO}/dist/run/\\d+/main\\.js$`));
    const sc = StringCodec();
    const nc = await connect({ servers: `127.0.0.1:${port}`, reconnect: false, timeout: 5_000 });
    try {
      nc.subscribe("svc.echo", { callback: (_e, m) => m.respond(m.data) });
      const reply = await nc.request("svc.echo", sc.encode("ping"), { timeout: 5_000 });
      expect(sc.decode(reply.data)).toBe("ping");
    } finally {
      await nc.close();
    }
    p.signal("SIGTERM");
    expect((await p.waitForExit()).code).toBe(0);
  });

  test("a cluster node runs gossip on its own thread, and the console serves its UI (both from the sources)", async () => {
    const [port, clusterPort, httpPort] = [await freePort(), await freePort(), await freePort()];
    const dir = tempDir("natter-checkout-bundle-");
    const conf = writeConfig(dir, "console.conf", `console { users: [ { user: ops, password: pw, role: admin } ] }\n`);
    const p = spawnNatter(["-a", "127.0.0.1", "-p", String(port), "--cluster", `nats://127.0.0.1:${clusterPort}`, "-m", String(httpPort), "-c", conf, "-D"], { command: [NATTER] });
    await p.waitForOutput(/Cluster: gossip runs on its own thread/, START_TIMEOUT_MS);
    const js = await fetch(`http://127.0.0.1:${httpPort}/console/app.js`);
    expect(js.status).toBe(200);
    expect((await js.text()).length).toBeGreaterThan(30_000);
    p.signal("SIGTERM");
    expect((await p.waitForExit()).code).toBe(0);
  });
});
