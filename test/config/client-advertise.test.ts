// client_advertise: the address clients are told instead of the listener's, as nats-server's
// setInfoHostPort/getClientConnectURLs: INFO's host and port (a bare host takes the client port), and in a
// cluster the URL the other members hand their clients in connect_urls; websocket { advertise } likewise for
// WebSocket clients.
import { connect } from "nats";
import { describe, expect, test } from "vitest";
import { connectRaw } from "../harness/raw.ts";
import * as natsWs from "nats.ws";
import { freePort, serverKind, startServer } from "../harness/server.ts";
import { startNode, waitFor, waitForMesh } from "../cluster/spawn.ts";

describe("client_advertise", () => {
  test("INFO carries the advertised host and port", async () => {
    const srv = await startServer({ config: 'client_advertise: "nats.example.com:4333"\n' });
    const c = await connectRaw(srv.port);
    expect(c.info?.host).toBe("nats.example.com");
    expect(c.info?.port).toBe(4333);
  });

  test("a host alone is advertised with the client port", async () => {
    const srv = await startServer({ config: 'client_advertise: "edge.example.com"\n' });
    const c = await connectRaw(srv.port);
    expect(c.info?.host).toBe("edge.example.com");
    expect(c.info?.port).toBe(srv.port);
  });

  test.skipIf(serverKind !== "natter")("natter cluster: the other members' clients get the advertised URL in connect_urls", async () => {
    const a = await startNode({ name: "A", extraArgs: ["--client_advertise", "a.example.com:4333"] });
    const b = await startNode({ name: "B", seeds: [a.clusterPort] });
    await waitForMesh([a, b]);
    const nc = await connect({ servers: b.url, reconnect: false });
    try {
      const urls = () => ((nc as unknown as { info: { connect_urls?: string[] } }).info.connect_urls ?? []).slice().sort();
      await waitFor("connect_urls with A's advertised URL", () => urls().includes("a.example.com:4333"));
      expect(urls()).toEqual(["a.example.com:4333", b.hostport].sort());
    } finally {
      await nc.close();
    }
  }, 30_000);

  test.skipIf(serverKind !== "natter")("natter cluster: websocket { advertise } is the URL the other members' WebSocket clients get", async () => {
    const [wa, wb] = [await freePort(), await freePort()];
    const a = await startNode({ name: "A", extraArgs: ["--ws_host", "127.0.0.1", "--ws_port", String(wa), "--ws_advertise", "ws-a.example.com"] });
    const b = await startNode({ name: "B", seeds: [a.clusterPort], extraArgs: ["--ws_host", "127.0.0.1", "--ws_port", String(wb)] });
    await waitForMesh([a, b]);
    const ws = await natsWs.connect({ servers: `ws://127.0.0.1:${wb}`, reconnect: false });
    try {
      const urls = () => ((ws as unknown as { info: { connect_urls?: string[] } }).info.connect_urls ?? []).slice().sort();
      await waitFor("connect_urls with A's advertised WebSocket URL", () => urls().includes(`ws-a.example.com:${wa}`));
      expect(urls()).toEqual([`127.0.0.1:${wb}`, `ws-a.example.com:${wa}`].sort());
    } finally {
      await ws.close();
    }
  }, 30_000);
});

