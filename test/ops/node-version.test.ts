// The Node.js version natter's install needs is stated once (package.json `engines`, repeated in the README)
// and is one every installed dependency accepts, so `npm install` on a stated version prints no engine warning.
// Node is only npm's runtime here: the server and the tests run on Bun (a dev dependency).
import { readFileSync } from "node:fs";
import path from "node:path";
import { expect, test } from "vitest";

const REPO = path.resolve(import.meta.dirname, "../..");
const pkg = JSON.parse(readFileSync(path.join(REPO, "package.json"), "utf8")) as { engines?: { node?: string } };
const lock = JSON.parse(readFileSync(path.join(REPO, "package-lock.json"), "utf8")) as {
  packages: Record<string, { engines?: { node?: string } | string[]; optional?: boolean }>;
};

/** The oldest release of each Node LTS line the stated range admits (22 and 24 are the LTS lines). */
const LTS_FLOORS = ["22.12.0", "24.0.0"];

test("package.json states the Node version; the README says the same", () => {
  expect(pkg.engines?.node).toBe(">=22.12.0");
  expect(readFileSync(path.join(REPO, "README.md"), "utf8")).toContain("Node.js 22.12 or later");
});

test("every dependency that is installed accepts the stated Node versions (no EBADENGINE warning)", () => {
  const refused: string[] = [];
  for (const [name, entry] of Object.entries(lock.packages)) {
    const range = Array.isArray(entry.engines) ? undefined : entry.engines?.node;
    if (name === "" || range === undefined || entry.optional) continue; // optional: other platforms' builds
    for (const version of LTS_FLOORS) {
      if (!Bun.semver.satisfies(version, range)) refused.push(`${name} wants node ${range}, not ${version}`);
    }
  }
  expect(refused).toEqual([]);
});
