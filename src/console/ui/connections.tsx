// Connections: /connz as a sortable, filterable table, with per-second rates from one poll to the next;
// a connection's detail with its subscriptions; the closed ones with their reason. Admins can close one.
// An MQTT client is marked as such (protocol MQTT) and, having no NATS name, shown by its client id
// (/connz's mqtt_client, as nats-server 2.10 has it).
import { useRef, useState } from "preact/hooks";
import { getJson, post, type Me } from "./api.ts";
import { bytes, count, rate } from "./format.ts";
import { usePoll } from "./live.ts";

interface SubDetail {
  subject: string;
  qgroup?: string;
  sid: string;
  msgs: number;
}

interface Conn {
  cid: number;
  type?: string;
  kind?: string;
  ip: string;
  port: number;
  name?: string;
  lang?: string;
  version?: string;
  account?: string;
  authorized_user?: string;
  subscriptions: number;
  pending_bytes: number;
  in_msgs: number;
  out_msgs: number;
  in_bytes: number;
  out_bytes: number;
  rtt?: string;
  idle: string;
  uptime: string;
  reason?: string;
  stop?: string;
  subscriptions_list_detail?: SubDetail[];
  /** An MQTT client's client id. */
  mqtt_client?: string;
}

interface Connz {
  num_connections: number;
  total: number;
  connections: Conn[] | null;
}

interface Row extends Conn {
  in_rate: number;
  out_rate: number;
}

/** `value`: what the column sorts by, when not the row's `key`. */
type Column = { key: keyof Row; label: string; numeric?: boolean; show: (r: Row) => string; value?: (r: Row) => string | number };

/** A connection's name: its NATS name, or an MQTT client's client id. */
const nameOf = (r: Conn) => r.name ?? (r.mqtt_client !== undefined ? `${r.mqtt_client} (MQTT client id)` : "");

const COLUMNS: Column[] = [
  { key: "cid", label: "CID", numeric: true, show: (r) => String(r.cid) },
  { key: "name", label: "Name", show: nameOf, value: nameOf },
  { key: "ip", label: "Address", show: (r) => `${r.ip}:${r.port}` },
  { key: "account", label: "Account", show: (r) => r.account ?? "" },
  { key: "type", label: "Protocol", show: (r) => ({ websocket: "WS", nats: "NATS", mqtt: "MQTT" })[r.type ?? "nats"] ?? (r.type ?? "").toUpperCase() },
  { key: "subscriptions", label: "Subs", numeric: true, show: (r) => count(r.subscriptions) },
  { key: "pending_bytes", label: "Pending", numeric: true, show: (r) => bytes(r.pending_bytes) },
  { key: "in_rate", label: "In msgs/s", numeric: true, show: (r) => rate(r.in_rate) },
  { key: "out_rate", label: "Out msgs/s", numeric: true, show: (r) => rate(r.out_rate) },
  { key: "in_msgs", label: "In msgs", numeric: true, show: (r) => count(r.in_msgs) },
  { key: "out_msgs", label: "Out msgs", numeric: true, show: (r) => count(r.out_msgs) },
  { key: "rtt", label: "RTT", show: (r) => r.rtt ?? "" },
  { key: "idle", label: "Idle", show: (r) => r.idle },
];

function matches(r: Conn, filter: string): boolean {
  if (filter === "") return true;
  const f = filter.toLowerCase();
  return [String(r.cid), r.name, r.mqtt_client, r.ip, r.account, r.type, r.lang, r.authorized_user].some((v) => v !== undefined && v.toLowerCase().includes(f));
}

export function ConnectionsPage({ me }: { me: Me }) {
  const previous = useRef(new Map<number, { at: number; in: number; out: number }>());
  const open = usePoll(async () => {
    const z = await getJson<Connz>("/connz?subs=detail&limit=1024");
    const now = performance.now();
    const rows: Row[] = (z.connections ?? []).map((c) => {
      const p = previous.current.get(c.cid);
      const seconds = p ? (now - p.at) / 1000 : 0;
      return { ...c, in_rate: p && seconds > 0 ? Math.max(0, (c.in_msgs - p.in) / seconds) : 0, out_rate: p && seconds > 0 ? Math.max(0, (c.out_msgs - p.out) / seconds) : 0 };
    });
    previous.current = new Map(rows.map((r) => [r.cid, { at: now, in: r.in_msgs, out: r.out_msgs }]));
    return { total: z.num_connections, rows };
  });
  const closed = usePoll(() => getJson<Connz>("/connz?state=closed&limit=50&sort=stop"));
  const [filter, setFilter] = useState("");
  const [sort, setSort] = useState<{ key: keyof Row; desc: boolean }>({ key: "cid", desc: false });
  const [selected, setSelected] = useState<number | null>(null);
  const [message, setMessage] = useState<string | null>(null);

  const rows = (open.data?.rows ?? []).filter((r) => matches(r, filter));
  const sortBy = COLUMNS.find((c) => c.key === sort.key)?.value ?? ((r: Row) => r[sort.key] ?? "");
  rows.sort((a, b) => {
    const x = sortBy(a);
    const y = sortBy(b);
    const c = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
    return sort.desc ? -c : c;
  });
  const detail = open.data?.rows.find((r) => r.cid === selected) ?? null;

  async function closeConnection(cid: number) {
    if (!confirm(`Close connection ${cid}?`)) return;
    try {
      await post("/console/api/connections/close", { cid });
      setMessage(`Connection ${cid} closed.`);
      setSelected(null);
    } catch (e) {
      setMessage(`Could not close connection ${cid}: ${(e as Error).message}`);
    }
  }

  return (
    <section>
      <h1>Connections <span class="muted" data-field="num_connections">{open.data ? count(open.data.total) : ""}</span></h1>
      {open.error && <p class="error">{open.error}</p>}
      {message && <p class="notice" role="status">{message}</p>}
      <label class="filter">Filter <input type="search" value={filter} placeholder="name, address, account, cid…" onInput={(e) => setFilter((e.target as HTMLInputElement).value)} /></label>
      <div class="table-wrap">
        <table class="data" data-table="connections">
          <thead>
            <tr>
              {COLUMNS.map((c) => (
                <th key={c.key} class={c.numeric ? "num" : ""} aria-sort={sort.key === c.key ? (sort.desc ? "descending" : "ascending") : undefined}>
                  <button type="button" class="sort" onClick={() => setSort({ key: c.key, desc: sort.key === c.key ? !sort.desc : !!c.numeric })}>
                    {c.label}{sort.key === c.key ? (sort.desc ? " ▼" : " ▲") : ""}
                  </button>
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.cid} data-cid={r.cid} class={r.cid === selected ? "selected" : ""}>
                {COLUMNS.map((c, i) => (
                  <td key={c.key} class={c.numeric ? "num" : ""}>
                    {i === 0 ? <button type="button" class="link" onClick={() => setSelected(r.cid === selected ? null : r.cid)}>{c.show(r)}</button> : c.show(r)}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {detail !== null && (
        <div class="detail" data-detail={detail.cid}>
          <h2>Connection {detail.cid} {detail.name ? `“${detail.name}”` : ""}</h2>
          <p>
            {detail.mqtt_client !== undefined ? <>MQTT client id <b data-field="mqtt_client">{detail.mqtt_client}</b></> : <>{detail.lang ?? "?"} {detail.version ?? ""}</>} · user {detail.authorized_user ?? "(none)"} · up {detail.uptime} · in {bytes(detail.in_bytes)} · out {bytes(detail.out_bytes)}
          </p>
          {me.role === "admin" && <button type="button" class="danger" onClick={() => closeConnection(detail.cid)}>Close connection</button>}
          <h3>Subscriptions ({detail.subscriptions})</h3>
          <table class="data">
            <thead><tr><th>Subject</th><th>Queue group</th><th>SID</th><th class="num">Msgs</th></tr></thead>
            <tbody>
              {(detail.subscriptions_list_detail ?? []).map((s) => (
                <tr key={s.sid}><td class="mono">{s.subject}</td><td>{s.qgroup ?? ""}</td><td>{s.sid}</td><td class="num">{count(s.msgs)}</td></tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <h2>Recently closed</h2>
      <div class="table-wrap">
        <table class="data" data-table="closed">
          <thead><tr><th class="num">CID</th><th>Name</th><th>Address</th><th>Reason</th><th>Closed at</th><th class="num">In msgs</th><th class="num">Out msgs</th></tr></thead>
          <tbody>
            {(closed.data?.connections ?? []).map((c) => (
              <tr key={c.cid} data-cid={c.cid}><td class="num">{c.cid}</td><td>{nameOf(c)}</td><td>{c.ip}:{c.port}</td><td>{c.reason ?? ""}</td><td>{c.stop ? new Date(c.stop).toLocaleTimeString() : ""}</td><td class="num">{count(c.in_msgs)}</td><td class="num">{count(c.out_msgs)}</td></tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
