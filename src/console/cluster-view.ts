// The Cluster page's membership view: what this node's gossip knows of every member (state, incarnation,
// since when), read from the cluster's Membership; routes and leaf links come from /routez and /leafz.
// Read only: nothing here changes the cluster.
import type { Server } from "../server.ts";
import { MemberState } from "../cluster/gossip.ts";

const STATE_NAMES: Record<number, string> = { [MemberState.ALIVE]: "alive", [MemberState.SUSPECT]: "suspect", [MemberState.DEAD]: "dead" };

export function clusterView(server: Server): Record<string, unknown> {
  const cluster = server.cluster;
  if (cluster === null) return { enabled: false, members: [] };
  const gossip = cluster.gossip;
  return {
    enabled: true,
    name: cluster.name || "",
    self: { name: server.serverName, port: cluster.port, incarnation: gossip?.inc ?? 0 },
    gossip: gossip ? { threaded: gossip.threaded, ...gossip.stats } : null,
    members: gossip === null ? [] : [...gossip.members.values()].map((m) => ({
      id: m.id,
      name: m.meta?.name ?? "",
      state: STATE_NAMES[m.state] ?? String(m.state),
      incarnation: m.inc,
      since: new Date(m.changedAt).toISOString(),
      client_urls: m.meta?.urls ?? [],
    })),
  };
}
