// Shared by the store-and-forward tests (edge-forward, edge-many): hub and edge processes with JetStream
// domains, and a stream's contents in sequence order.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { StringCodec, type JetStreamManager } from "nats";
import { afterAll } from "vitest";
import { HOST, startProc, type Kind, type Proc } from "./spawn.ts";

export const sc = StringCodec();
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

export function storeDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), "natter-edge-"));
  dirs.push(d);
  return d;
}

export async function startHub(kind: Kind): Promise<Proc> {
  return startProc(kind, { name: "HUB", config: `jetstream { store_dir: "${storeDir()}", domain: hub }\nleafnodes { listen: "${HOST}:{{leaf_port}}" }\n` });
}

export async function startEdge(kind: Kind, hub: Proc, name = "EDGE", domain = "edge"): Promise<Proc> {
  return startProc(kind, {
    name, trace: process.env.EDGE_TRACE === "1",
    config: `jetstream { store_dir: "${storeDir()}", domain: ${domain} }\nleafnodes { remotes [ { url: "nats-leaf://${HOST}:${hub.leafPort}" } ] }\n`,
  });
}

/** The messages of a stream in sequence order: payloads and their Nats-Stream-Source headers. */
export async function contents(jsm: JetStreamManager, stream: string): Promise<{ data: string[]; sources: string[]; subjects: string[] }> {
  const info = await jsm.streams.info(stream);
  const data: string[] = [];
  const sources: string[] = [];
  const subjects: string[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    data.push(sc.decode(m.data));
    sources.push(m.header?.get("Nats-Stream-Source") ?? "");
    subjects.push(m.subject);
  }
  return { data, sources, subjects };
}
