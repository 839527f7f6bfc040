// The console in the compiled binary: `npm run build` bundles the UI (Preact, uPlot, the pages) with Bun's
// bundler and embeds it, so dist/natter serves /console/app.js and app.css with no sources and nothing
// fetched from anywhere. (Inside the binary the UI's source path is /$bunfs/…, never on disk, so what is
// served here can only be the embedded bundle.)
import { spawnSync } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { hostTarget } from "../../scripts/build.ts";
import { BUN, REPO, freePort, spawnNatter, tempDir, writeConfig, type NatterProcess } from "../ops/proc.ts";

const BUILD_TIMEOUT_MS = 120_000;
const dir = tempDir("natter-console-bin-");

describe("the compiled binary's console", () => {
  let natter: NatterProcess | null = null;
  let base = "";
  beforeAll(async () => {
    const r = spawnSync(BUN, ["scripts/build.ts", "--target", "host", "--outdir", path.join(dir, "bin")], { cwd: REPO, encoding: "utf8", timeout: BUILD_TIMEOUT_MS });
    if (r.error || r.status !== 0) throw new Error(`scripts/build.ts failed: ${r.error?.message ?? r.status}\n${r.stdout}\n${r.stderr}`);
    const [port, httpPort] = [await freePort(), await freePort()];
    const conf = writeConfig(dir, "console.conf", `console { users: [ { user: ops, password: pw, role: admin } ] }\n`);
    natter = spawnNatter(["-a", "127.0.0.1", "-p", String(port), "-m", String(httpPort), "-c", conf], { command: [path.join(dir, "bin", `natter-${hostTarget()}`)], cwd: dir });
    await natter.waitForOutput(/Server is ready/);
    base = `http://127.0.0.1:${httpPort}`;
  }, BUILD_TIMEOUT_MS + 20_000);
  afterAll(async () => {
    natter?.signal("SIGTERM");
    await natter?.waitForExit();
  });

  test("serves the page, the bundled script and the style sheet", async () => {
    const page = await fetch(`${base}/console`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("/console/app.js");
    const js = await fetch(`${base}/console/app.js`);
    expect(js.status).toBe(200);
    const script = await js.text();
    expect(script.length).toBeGreaterThan(30_000); // Preact + uPlot + the pages, minified
    expect(script).toContain("/console/api/session");
    const css = await fetch(`${base}/console/app.css`);
    expect(await css.text()).toContain(".uplot");
  });
});
