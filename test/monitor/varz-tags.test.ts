// server_tags: labels of the server, shown in /varz `tags` as nats-server shows them (trimmed, lower case,
// each once; a single string is one tag). Compared with a live nats-server 2.9.10.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { HAS_NATS_SERVER } from "../harness/reference.ts";
import { getJson, startMonitored, type Kind, type Monitored } from "./spawn.ts";

const started: Monitored[] = [];
const dir = mkdtempSync(path.join(os.tmpdir(), "natter-varz-tags-"));
afterAll(async () => {
  await Promise.allSettled(started.map((s) => s.stop()));
  rmSync(dir, { recursive: true, force: true });
});

async function withConfig(kind: Kind, text: string): Promise<Monitored> {
  const file = path.join(dir, `${kind}-${started.length}.conf`);
  writeFileSync(file, text);
  const server = await startMonitored(kind, ["-c", file]);
  started.push(server);
  return server;
}

const kinds: Kind[] = HAS_NATS_SERVER ? ["natter", "nats-server"] : ["natter"];

describe("/varz tags", () => {
  test.each(kinds)("%s: server_tags as a list and as one string; absent without them", async (kind) => {
    const list = await withConfig(kind, 'server_tags: ["Az:US-East", " edge ", "edge"]\n');
    expect((await getJson<Record<string, unknown>>(list, "/varz")).tags).toEqual(["az:us-east", "edge"]);
    const one = await withConfig(kind, 'server_tags: "solo"\n');
    expect((await getJson<Record<string, unknown>>(one, "/varz")).tags).toEqual(["solo"]);
    const none = await withConfig(kind, "debug: false\n");
    expect("tags" in (await getJson<Record<string, unknown>>(none, "/varz"))).toBe(false);
  });
});
