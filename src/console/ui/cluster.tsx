// Cluster and edge: the members as this node's gossip sees them, the routes with their rates (/routez),
// the leaf links with their accounts (/leafz), and with clustered JetStream the meta group's leader
// (/jsz's meta_cluster) and each stream's leader and replicas (its `cluster` block in /jsz?streams=1).
import { useRef } from "preact/hooks";
import { getJson } from "./api.ts";
import { bytes, count, rate } from "./format.ts";
import { usePoll } from "./live.ts";

interface ClusterView {
  enabled: boolean;
  name?: string;
  self?: { name: string; port: number; incarnation: number };
  gossip?: { threaded: boolean; sentMessages: number; receivedMessages: number; sentBytes: number; receivedBytes: number } | null;
  members: { id: string; name: string; state: string; incarnation: number; since: string; client_urls: string[] }[];
}

interface Link {
  rid?: number;
  remote_name?: string;
  name?: string;
  account?: string;
  ip: string;
  port: number;
  rtt?: string;
  in_msgs: number;
  out_msgs: number;
  in_bytes: number;
  out_bytes: number;
  subscriptions: number;
  pending_size?: number;
  is_spoke?: boolean;
}

/** A replica as stream info and /jsz's meta_cluster list them (nats-server's PeerInfo). */
interface Peer {
  name: string;
  current: boolean;
  offline?: boolean;
  /** ns since it was last heard from. */
  active: number;
  lag?: number;
  peer?: string;
}

interface ClusteredJsz {
  disabled?: boolean;
  meta_cluster?: { name?: string; leader?: string; peer?: string; cluster_size?: number; replicas?: Peer[]; term?: number };
  account_details?: { name: string; stream_detail?: { name: string; config?: { num_replicas?: number }; cluster?: { name?: string; leader?: string; replicas?: Peer[] } }[] }[];
}

function peerState(p: Peer): string {
  if (p.offline) return "offline";
  if (p.current) return "current";
  return p.lag ? `behind by ${count(p.lag)}` : "catching up";
}

/** The meta group's leader and every stream's leader and replicas (only when JetStream is clustered). */
function JetStreamCluster() {
  const jsz = usePoll(() => getJson<ClusteredJsz>("/jsz?streams=1&config=1"));
  const z = jsz.data;
  if (z === null || z.disabled) return null;
  const meta = z.meta_cluster;
  const streams = (z.account_details ?? []).flatMap((a) => (a.stream_detail ?? []).filter((s) => s.cluster !== undefined).map((s) => ({ account: a.name, ...s })));
  return (
    <>
      <h2>JetStream</h2>
      {jsz.error && <p class="error">{jsz.error}</p>}
      {meta === undefined && <p class="muted">JetStream is not clustered on this node.</p>}
      {meta !== undefined && (
        <p class="muted">
          meta group leader <b data-field="meta_leader">{meta.leader || "none yet (electing)"}</b>
          {meta.cluster_size ? ` · ${meta.cluster_size} peers` : ""}{meta.term ? ` · term ${meta.term}` : ""}
          {(meta.replicas ?? []).length > 0 && <> · others: {(meta.replicas ?? []).map((p) => `${p.name} (${peerState(p)})`).join(", ")}</>}
        </p>
      )}
      {meta !== undefined && (
        <div class="table-wrap">
          <table class="data" data-table="stream-replicas">
            <thead><tr><th>Stream</th><th>Account</th><th class="num">Replicas</th><th>Leader</th><th>Other replicas</th></tr></thead>
            <tbody>
              {streams.map((s) => (
                <tr key={`${s.account}/${s.name}`} data-stream={s.name}>
                  <td>{s.name}</td><td>{s.account}</td><td class="num">{s.config?.num_replicas ?? 1}</td>
                  <td data-field="leader">{s.cluster?.leader ?? "none (electing)"}</td>
                  <td data-field="replicas">{(s.cluster?.replicas ?? []).map((p) => <span key={p.name} class={`replica state-${p.offline ? "dead" : p.current ? "alive" : "suspect"}`} data-replica={p.name}>{p.name}: {peerState(p)}</span>)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

/** msgs/s in and out per link, from one poll to the next. */
function useRates() {
  const last = useRef(new Map<string, { at: number; in: number; out: number }>());
  return (key: string, l: Link) => {
    const now = performance.now();
    const p = last.current.get(key);
    last.current.set(key, { at: now, in: l.in_msgs, out: l.out_msgs });
    if (!p || now - p.at < 100) return { in: 0, out: 0 };
    const s = (now - p.at) / 1000;
    return { in: Math.max(0, (l.in_msgs - p.in) / s), out: Math.max(0, (l.out_msgs - p.out) / s) };
  };
}

export function ClusterPage() {
  const cluster = usePoll(() => getJson<ClusterView>("/console/api/cluster"));
  const routez = usePoll(() => getJson<{ num_routes: number; routes: Link[] | null }>("/routez"));
  const leafz = usePoll(() => getJson<{ leafnodes: number; leafs: Link[] | null }>("/leafz"));
  const routeRate = useRates();
  const leafRate = useRates();
  const c = cluster.data;
  return (
    <section>
      <h1>Cluster and edge</h1>
      {(cluster.error || routez.error || leafz.error) && <p class="error">{cluster.error ?? routez.error ?? leafz.error}</p>}
      <h2>Members</h2>
      {c && !c.enabled && <p class="muted">Not clustered (<code>--cluster</code> or a <code>cluster {"{}"}</code> block).</p>}
      {c?.enabled && (
        <>
          <p class="muted">
            cluster {c.name || "(unnamed)"} · this node {c.self?.name} on port {c.self?.port}, incarnation {c.self?.incarnation}
            {c.gossip && <> · gossip {c.gossip.threaded ? "on its own thread" : "on the event loop"}: {count(c.gossip.sentMessages)} sent, {count(c.gossip.receivedMessages)} received</>}
          </p>
          <div class="table-wrap">
            <table class="data" data-table="members">
              <thead><tr><th>Member</th><th>Name</th><th>State</th><th class="num">Incarnation</th><th>Since</th><th>Client URLs</th></tr></thead>
              <tbody>
                {c.members.map((m) => (
                  <tr key={m.id} data-member={m.id}><td class="mono">{m.id}</td><td>{m.name}</td><td data-field="state" class={`state-${m.state}`}>{m.state}</td><td class="num">{m.incarnation}</td><td>{new Date(m.since).toLocaleTimeString()}</td><td class="mono">{m.client_urls.join(", ")}</td></tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
      <h2>Routes <span class="muted" data-field="num_routes">{routez.data ? count(routez.data.num_routes) : ""}</span></h2>
      <div class="table-wrap">
        <table class="data" data-table="routes">
          <thead><tr><th class="num">RID</th><th>Remote</th><th>Address</th><th>RTT</th><th class="num">In msgs/s</th><th class="num">Out msgs/s</th><th class="num">In</th><th class="num">Out</th><th class="num">Subs</th><th class="num">Pending</th></tr></thead>
          <tbody>
            {(routez.data?.routes ?? []).map((r) => {
              const v = routeRate(`r${r.rid}`, r);
              return <tr key={r.rid} data-route={r.remote_name}><td class="num">{r.rid}</td><td>{r.remote_name}</td><td>{r.ip}:{r.port}</td><td>{r.rtt ?? ""}</td><td class="num">{rate(v.in)}</td><td class="num">{rate(v.out)}</td><td class="num">{count(r.in_msgs)} / {bytes(r.in_bytes)}</td><td class="num">{count(r.out_msgs)} / {bytes(r.out_bytes)}</td><td class="num">{count(r.subscriptions)}</td><td class="num">{bytes(r.pending_size ?? 0)}</td></tr>;
            })}
          </tbody>
        </table>
      </div>
      <h2>Leaf links <span class="muted" data-field="leafnodes">{leafz.data ? count(leafz.data.leafnodes) : ""}</span></h2>
      <div class="table-wrap">
        <table class="data" data-table="leafs">
          <thead><tr><th>Name</th><th>Account</th><th>Direction</th><th>Address</th><th>RTT</th><th class="num">In msgs/s</th><th class="num">Out msgs/s</th><th class="num">Subs</th></tr></thead>
          <tbody>
            {(leafz.data?.leafs ?? []).map((l, i) => {
              const v = leafRate(`l${l.name}${l.ip}${l.port}`, l);
              return <tr key={i} data-leaf={l.name}><td>{l.name}</td><td>{l.account}</td><td>{l.is_spoke ? "to a hub" : "from a leaf node"}</td><td>{l.ip}:{l.port}</td><td>{l.rtt ?? ""}</td><td class="num">{rate(v.in)}</td><td class="num">{rate(v.out)}</td><td class="num">{count(l.subscriptions)}</td></tr>;
            })}
          </tbody>
        </table>
      </div>
      <JetStreamCluster />
    </section>
  );
}
