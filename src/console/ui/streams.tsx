// Streams and consumers: per stream its messages, bytes, sequences and how full its limits are; per
// consumer its lag (num_pending), ack pending, redeliveries and waiting pulls (all from /jsz); a message
// browser by sequence and subject; the dead letters of consumers that have a dead_letter_subject; and,
// for admins, create, purge, delete, replay a range, redrive or discard a dead letter (src/console/replay.ts).
import { useState } from "preact/hooks";
import { getJson, post, type Me } from "./api.ts";
import { bytes, count } from "./format.ts";
import { usePoll } from "./live.ts";
import { Chart } from "./chart.tsx";
import { EDITABLE_CONSUMER_FIELDS, FIXED_CONSUMER_FIELDS, fieldValue, type EditableField } from "../consumer-edit.ts";

interface Consumer {
  name: string;
  num_pending: number;
  num_ack_pending: number;
  num_redelivered: number;
  num_waiting: number;
  delivered?: { stream_seq: number; last_active?: string };
  config?: { durable_name?: string; filter_subject?: string; filter_subjects?: string[]; ack_policy?: string; deliver_subject?: string; [key: string]: unknown };
}

interface Stream {
  name: string;
  config?: { subjects?: string[]; storage?: string; max_msgs?: number; max_bytes?: number; max_age?: number };
  state: { messages: number; bytes: number; first_seq: number; last_seq: number; consumer_count: number };
  consumer_detail?: Consumer[];
}

interface Jsz {
  disabled?: boolean;
  streams?: number;
  consumers?: number;
  messages?: number;
  bytes?: number;
  account_details?: { name: string; stream_detail?: Stream[] }[];
}

interface StoredMessage {
  subject: string;
  seq: number;
  time: string;
  headers: string;
  data: string;
}

function fullness(used: number, limit: number | undefined): string {
  if (limit === undefined || limit <= 0) return "no limit";
  return `${((used / limit) * 100).toFixed(1)}% of ${count(limit)}`;
}

/** A payload as text (JSON pretty-printed) when it is valid UTF-8 text, else as hex. */
function showPayload(base64: string): { kind: string; text: string } {
  const raw = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(raw);
    if (/[\u0000-\u0008\u000e-\u001f]/.test(text)) throw new Error("binary");
    try {
      return { kind: "JSON", text: JSON.stringify(JSON.parse(text), null, 2) };
    } catch {
      return { kind: "text", text };
    }
  } catch {
    const hex = [...raw].map((b) => b.toString(16).padStart(2, "0"));
    const lines: string[] = [];
    for (let i = 0; i < hex.length; i += 16) lines.push(`${i.toString(16).padStart(6, "0")}  ${hex.slice(i, i + 16).join(" ")}`);
    return { kind: "binary (hex)", text: lines.join("\n") };
  }
}

function Browser({ account, stream, first }: { account: string; stream: string; first: number }) {
  const [seq, setSeq] = useState(String(first || 1));
  const [subject, setSubject] = useState("");
  const [msg, setMsg] = useState<StoredMessage | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [time, setTime] = useState("");
  async function load(at: number, byTime = false) {
    try {
      const q = new URLSearchParams({ account, stream, seq: String(at) });
      if (subject) q.set("subject", subject);
      if (byTime) q.set("time", new Date(time).toISOString());
      const m = await getJson<StoredMessage>(`/console/api/streams/msg?${q}`);
      setMsg(m);
      setSeq(String(m.seq));
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
  }
  const payload = msg ? showPayload(msg.data) : null;
  return (
    <div class="detail" data-browser={stream}>
      <h3>Messages of {stream}</h3>
      <form class="inline" onSubmit={(e) => { e.preventDefault(); void load(Number(seq)); }}>
        <label>Sequence <input name="seq" value={seq} inputMode="numeric" size={8} onInput={(e) => setSeq((e.target as HTMLInputElement).value)} /></label>
        <label>Subject filter <input name="subject" value={subject} placeholder="any" onInput={(e) => setSubject((e.target as HTMLInputElement).value)} /></label>
        <button type="submit">Show</button>
        <button type="button" onClick={() => load(Math.max(1, Number(seq) - 1))} disabled={subject !== ""}>Previous</button>
        <button type="button" onClick={() => load(Number(seq) + 1)}>Next</button>
        <label>From time <input name="time" type="datetime-local" step="1" value={time} onInput={(e) => setTime((e.target as HTMLInputElement).value)} /></label>
        <button type="button" onClick={() => load(1, true)} disabled={time === ""}>Show from time</button>
      </form>
      {error && <p class="error">{error}</p>}
      {msg && payload && (
        <div class="message" data-seq={msg.seq}>
          <p><b>#{msg.seq}</b> on <code data-field="msg-subject">{msg.subject}</code> at {new Date(msg.time).toLocaleString()}</p>
          {msg.headers && <pre class="headers">{msg.headers.trim()}</pre>}
          <p class="muted">payload, {payload.kind}</p>
          <pre data-field="msg-payload">{payload.text}</pre>
        </div>
      )}
    </div>
  );
}

function BacklogChart({ account, stream, consumer }: { account: string; stream: string; consumer: string }) {
  const series = usePoll(() => getJson<{ t: number[]; num_pending: number[]; num_ack_pending: number[] }>(`/console/api/backlog?${new URLSearchParams({ account, stream, consumer })}`), [account, stream, consumer]);
  if (series.error) return <p class="error">{series.error}</p>;
  if (!series.data) return null;
  return (
    <div data-backlog={consumer}>
      <Chart title={`Backlog of ${consumer}`} t={series.data.t} format={count} lines={[
        { label: "pending", values: series.data.num_pending, color: "#f59e0b" },
        { label: "ack pending", values: series.data.num_ack_pending, color: "#8b5cf6" },
      ]} />
    </div>
  );
}

function EditStream({ account, stream, config, onDone }: { account: string; stream: string; config: Stream["config"]; onDone: (text: string) => void }) {
  async function submit(e: Event) {
    e.preventDefault();
    const f = new FormData(e.target as HTMLFormElement);
    try {
      await post("/console/api/streams/update", { account, name: stream, subjects: f.get("subjects"), max_msgs: f.get("max_msgs"), max_bytes: f.get("max_bytes"), max_age_seconds: f.get("max_age") });
      onDone(`Stream ${stream} updated.`);
    } catch (err) {
      onDone(`Could not update ${stream}: ${(err as Error).message}`);
    }
  }
  return (
    <form class="inline detail" onSubmit={submit} aria-label={`Edit ${stream}`}>
      <label>Subjects <input name="subjects" defaultValue={(config?.subjects ?? []).join(", ")} /></label>
      <label>Max msgs <input name="max_msgs" inputMode="numeric" size={9} defaultValue={String(config?.max_msgs ?? -1)} /></label>
      <label>Max bytes <input name="max_bytes" inputMode="numeric" size={11} defaultValue={String(config?.max_bytes ?? -1)} /></label>
      <label>Max age (s) <input name="max_age" inputMode="numeric" size={7} defaultValue={String((config?.max_age ?? 0) / 1e9)} /></label>
      <button type="submit">Save</button>
    </form>
  );
}

function CreateConsumer({ account, stream, onDone }: { account: string; stream: string; onDone: (text: string) => void }) {
  async function submit(e: Event) {
    e.preventDefault();
    const f = new FormData(e.target as HTMLFormElement);
    const body = Object.fromEntries(["name", "filter_subject", "ack_policy", "deliver_policy", "max_deliver", "dead_letter_subject"].map((k) => [k, String(f.get(k) ?? "")]));
    try {
      await post("/console/api/consumers/create", { account, stream, ...body });
      onDone(`Consumer ${body.name} created on ${stream}.`);
      (e.target as HTMLFormElement).reset();
    } catch (err) {
      onDone(`Could not create the consumer: ${(err as Error).message}`);
    }
  }
  return (
    <form class="inline detail" onSubmit={submit} aria-label={`Create a consumer on ${stream}`}>
      <label>Consumer <input name="name" required size={10} /></label>
      <label>Filter subject <input name="filter_subject" placeholder="any" size={12} /></label>
      <label>Ack <select name="ack_policy"><option value="explicit">explicit</option><option value="all">all</option><option value="none">none</option></select></label>
      <label>Deliver <select name="deliver_policy"><option value="all">all</option><option value="new">new</option><option value="last">last</option></select></label>
      <label>Max deliver <input name="max_deliver" inputMode="numeric" size={5} placeholder="∞" /></label>
      <label>Dead letters to <input name="dead_letter_subject" placeholder="(none)" size={12} /></label>
      <button type="submit">Create consumer</button>
    </form>
  );
}

function ConsumerField({ field, config }: { field: EditableField; config: Record<string, unknown> }) {
  const value = fieldValue(field, config);
  if (field.kind === "boolean") return <label class="check"><input type="checkbox" name={field.key} defaultChecked={value === true} /> {field.label}</label>;
  if (field.kind === "metadata") return <label>{field.label} <textarea name={field.key} rows={2} cols={22} placeholder={field.hint} defaultValue={String(value)} /></label>;
  const numeric = field.kind === "integer";
  return <label>{field.label} <input name={field.key} inputMode={numeric ? "numeric" : undefined} size={numeric ? 7 : field.kind === "text" || field.kind === "subjects" ? 16 : 10} placeholder={field.hint} defaultValue={String(value)} /></label>;
}

/**
 * Edit a consumer: the settings nats-server lets change (src/console/consumer-edit.ts); its answer, or its
 * error text. Keyed by the config /jsz shows, so it is drawn again when the server's config changes (the
 * server may change more than was asked: a backoff sets ack_wait).
 */
function EditConsumer({ account, stream, consumer, onDone, onClose }: { account: string; stream: string; consumer: Consumer; onDone: (text: string) => void; onClose: () => void }) {
  const config = consumer.config ?? {};
  const kind = config.deliver_subject ? "push" : "pull";
  const fields = EDITABLE_CONSUMER_FIELDS.filter((f) => f.only === undefined || f.only === kind);
  async function submit(e: Event) {
    e.preventDefault();
    const f = new FormData(e.target as HTMLFormElement);
    const answers = Object.fromEntries(fields.map((x) => [x.key, x.kind === "boolean" ? f.get(x.key) !== null : String(f.get(x.key) ?? "")]));
    try {
      const r = await post<{ changed: string[] }>("/console/api/consumers/update", { account, stream, name: consumer.name, ...answers });
      onDone(r.changed.length > 0 ? `Consumer ${consumer.name} updated (${r.changed.join(", ")}).` : `Consumer ${consumer.name}: nothing changed.`);
      onClose();
    } catch (err) {
      onDone(`Could not update ${consumer.name}: ${(err as Error).message}`);
    }
  }
  return (
    <form class="inline detail" onSubmit={submit} aria-label={`Edit consumer ${consumer.name}`}>
      <h3>Edit {consumer.name} <span class="muted">({kind}; fixed at creation: {FIXED_CONSUMER_FIELDS.map((k) => `${k.replace(/_/g, " ")} ${String(config[k] ?? "-")}`).join(" · ")})</span></h3>
      {fields.map((field) => <ConsumerField key={field.key} field={field} config={config} />)}
      <button type="submit">Save consumer</button>
    </form>
  );
}

function Replay({ account, stream, first, last, onDone }: { account: string; stream: string; first: number; last: number; onDone: (text: string) => void }) {
  async function submit(e: Event) {
    e.preventDefault();
    const f = new FormData(e.target as HTMLFormElement);
    const body = { account, stream, from: Number(f.get("from")), to: Number(f.get("to")), subject: String(f.get("subject")) };
    if (!confirm(`Republish ${stream} #${body.from}…#${body.to} to ${body.subject}?`)) return;
    try {
      const r = await post<{ replayed: number }>("/console/api/streams/replay", body);
      onDone(`Replayed ${r.replayed} messages of ${stream} to ${body.subject}.`);
    } catch (err) {
      onDone(`Could not replay: ${(err as Error).message}`);
    }
  }
  return (
    <form class="inline" onSubmit={submit} aria-label={`Replay ${stream}`}>
      <label>From seq <input name="from" inputMode="numeric" size={7} defaultValue={String(first || 1)} /></label>
      <label>To seq <input name="to" inputMode="numeric" size={7} defaultValue={String(last || 1)} /></label>
      <label>To subject <input name="subject" required placeholder="replay.orders" /></label>
      <button type="submit">Replay</button>
    </form>
  );
}

interface Letter {
  seq: number;
  time: string;
  reason: string;
  term_reason?: string;
  deliveries: number;
  original_subject: string;
  original_seq: number;
  data: string;
}

interface DeadLetterQueue {
  account: string;
  stream: string;
  consumer: string;
  dead_letter_subject: string;
  dlq_stream: string | null;
  letters: Letter[];
}

function DeadLetters({ admin, onDone }: { admin: boolean; onDone: (text: string) => void }) {
  const queues = usePoll(() => getJson<DeadLetterQueue[]>("/console/api/dead-letters"));
  const list = queues.data ?? [];
  if (list.length === 0) return null;
  async function act(kind: "redrive" | "discard", q: DeadLetterQueue, l: Letter) {
    if (!confirm(kind === "redrive" ? `Republish dead letter #${l.seq} to ${l.original_subject}?` : `Discard dead letter #${l.seq}?`)) return;
    try {
      await post(`/console/api/dead-letters/${kind}`, { account: q.account, stream: q.dlq_stream, seq: l.seq });
      onDone(kind === "redrive" ? `Dead letter ${l.seq} redriven to ${l.original_subject}.` : `Dead letter ${l.seq} discarded.`);
    } catch (err) {
      onDone(`Failed: ${(err as Error).message}`);
    }
  }
  return (
    <>
      <h2>Dead letters</h2>
      {list.map((q) => (
        <div class="detail" key={`${q.account}/${q.stream}/${q.consumer}`} data-dlq={q.consumer}>
          <h3>{q.stream} › {q.consumer} <span class="muted">→ <code>{q.dead_letter_subject}</code>{q.dlq_stream ? ` kept in stream ${q.dlq_stream}` : " (no stream keeps that subject: letters are not kept)"}</span></h3>
          <div class="table-wrap">
            <table class="data" data-table="dead-letters">
              <thead><tr><th class="num">Seq</th><th>Original</th><th>Reason</th><th class="num">Deliveries</th><th>Time</th><th>Payload</th>{admin && <th />}</tr></thead>
              <tbody>
                {q.letters.map((l) => (
                  <tr key={l.seq} data-seq={l.seq}>
                    <td class="num">{l.seq}</td><td class="mono">{l.original_subject} #{l.original_seq}</td>
                    <td data-field="reason">{l.reason}{l.term_reason ? `: ${l.term_reason}` : ""}</td><td class="num">{l.deliveries}</td>
                    <td>{new Date(l.time).toLocaleTimeString()}</td><td class="mono">{showPayload(l.data).text.slice(0, 60)}</td>
                    {admin && <td><button type="button" onClick={() => act("redrive", q, l)}>Redrive</button> <button type="button" class="danger" onClick={() => act("discard", q, l)}>Discard</button></td>}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </div>
      ))}
    </>
  );
}

function CreateStream({ onDone }: { onDone: (text: string) => void }) {
  async function submit(e: Event) {
    e.preventDefault();
    const f = new FormData(e.target as HTMLFormElement);
    try {
      await post("/console/api/streams/create", { account: f.get("account"), name: f.get("name"), subjects: f.get("subjects"), storage: f.get("storage") });
      onDone(`Stream ${f.get("name")} created.`);
      (e.target as HTMLFormElement).reset();
    } catch (err) {
      onDone(`Could not create the stream: ${(err as Error).message}`);
    }
  }
  return (
    <form class="inline detail" onSubmit={submit} aria-label="Create a stream">
      <label>Account <input name="account" defaultValue="$G" size={8} /></label>
      <label>Name <input name="name" required /></label>
      <label>Subjects <input name="subjects" placeholder="orders.>, audit.*" /></label>
      <label>Storage <select name="storage"><option value="file">file</option><option value="memory">memory</option></select></label>
      <button type="submit">Create stream</button>
    </form>
  );
}

export function StreamsPage({ me }: { me: Me }) {
  const jsz = usePoll(() => getJson<Jsz>("/jsz?streams=1&consumers=1&config=1"));
  const [browsing, setBrowsing] = useState<{ account: string; stream: string; first: number } | null>(null);
  const [charted, setCharted] = useState<string | null>(null);
  const [editing, setEditing] = useState<string | null>(null);
  const [editingConsumer, setEditingConsumer] = useState<string | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const admin = me.role === "admin";

  async function act(path: string, body: Record<string, unknown>, question: string, done: string) {
    if (!confirm(question)) return;
    try {
      await post(path, body);
      setMessage(done);
    } catch (e) {
      setMessage(`Failed: ${(e as Error).message}`);
    }
  }

  if (jsz.data?.disabled) return <section><h1>Streams</h1><p>JetStream is off on this server (<code>-js</code> turns it on).</p></section>;
  const accounts = jsz.data?.account_details ?? [];
  return (
    <section>
      <h1>Streams <span class="muted" data-field="streams">{jsz.data ? count(jsz.data.streams ?? 0) : ""}</span></h1>
      {jsz.error && <p class="error">{jsz.error}</p>}
      {message && <p class="notice" role="status">{message}</p>}
      {jsz.data && <p class="muted">{count(jsz.data.messages ?? 0)} messages · {bytes(jsz.data.bytes ?? 0)} · {count(jsz.data.consumers ?? 0)} consumers</p>}
      {admin && <CreateStream onDone={setMessage} />}
      {accounts.flatMap((a) => (a.stream_detail ?? []).map((s) => (
        <div class="stream" key={`${a.name}/${s.name}`} data-stream={s.name}>
          <h2>{s.name} <span class="muted">account {a.name} · {s.config?.storage ?? ""} · {(s.config?.subjects ?? []).join(", ")}</span></h2>
          <div class="stats">
            <div class="stat"><span class="stat-label">Messages</span><span class="stat-value" data-stat="messages">{count(s.state.messages)}</span></div>
            <div class="stat"><span class="stat-label">Bytes</span><span class="stat-value">{bytes(s.state.bytes)}</span></div>
            <div class="stat"><span class="stat-label">First / last seq</span><span class="stat-value">{s.state.first_seq} / {s.state.last_seq}</span></div>
            <div class="stat"><span class="stat-label">Max msgs</span><span class="stat-value small">{fullness(s.state.messages, s.config?.max_msgs)}</span></div>
            <div class="stat"><span class="stat-label">Max bytes</span><span class="stat-value small">{fullness(s.state.bytes, s.config?.max_bytes)}</span></div>
          </div>
          <div class="actions">
            <button type="button" onClick={() => setBrowsing(browsing?.stream === s.name ? null : { account: a.name, stream: s.name, first: s.state.first_seq })}>Browse messages</button>
            {admin && <button type="button" aria-expanded={editing === `${a.name}/${s.name}`} onClick={() => setEditing(editing === `${a.name}/${s.name}` ? null : `${a.name}/${s.name}`)}>Edit</button>}
            {admin && <button type="button" onClick={() => act("/console/api/streams/purge", { account: a.name, name: s.name }, `Purge every message of ${s.name}?`, `Stream ${s.name} purged.`)}>Purge</button>}
            {admin && <button type="button" class="danger" onClick={() => act("/console/api/streams/delete", { account: a.name, name: s.name }, `Delete stream ${s.name} and its consumers?`, `Stream ${s.name} deleted.`)}>Delete stream</button>}
          </div>
          {browsing?.stream === s.name && browsing.account === a.name && <Browser {...browsing} />}
          {admin && editing === `${a.name}/${s.name}` && (
            <>
              <EditStream account={a.name} stream={s.name} config={s.config} onDone={setMessage} />
              <CreateConsumer account={a.name} stream={s.name} onDone={setMessage} />
            </>
          )}
          {admin && <Replay account={a.name} stream={s.name} first={s.state.first_seq} last={s.state.last_seq} onDone={setMessage} />}
          <div class="table-wrap">
            <table class="data" data-table="consumers">
              <thead><tr><th>Consumer</th><th>Filter</th><th class="num">Lag (pending)</th><th class="num">Ack pending</th><th class="num">Redelivered</th><th class="num">Waiting pulls</th><th>Last active</th>{admin && <th />}</tr></thead>
              <tbody>
                {(s.consumer_detail ?? []).map((c) => (
                  <tr key={c.name} data-consumer={c.name}>
                    <td><button type="button" class="link" aria-expanded={charted === `${a.name}/${s.name}/${c.name}`} onClick={() => setCharted(charted === `${a.name}/${s.name}/${c.name}` ? null : `${a.name}/${s.name}/${c.name}`)}>{c.name}</button></td><td class="mono">{c.config?.filter_subject ?? ""}</td>
                    <td class="num" data-stat="num_pending">{count(c.num_pending)}</td><td class="num" data-stat="num_ack_pending">{count(c.num_ack_pending)}</td>
                    <td class="num">{count(c.num_redelivered)}</td><td class="num">{count(c.num_waiting)}</td>
                    <td>{c.delivered?.last_active ? new Date(c.delivered.last_active).toLocaleTimeString() : ""}</td>
                    {admin && <td><button type="button" aria-expanded={editingConsumer === `${a.name}/${s.name}/${c.name}`} onClick={() => setEditingConsumer(editingConsumer === `${a.name}/${s.name}/${c.name}` ? null : `${a.name}/${s.name}/${c.name}`)} aria-label={`Edit consumer ${c.name}`}>Edit</button> <button type="button" class="danger" onClick={() => act("/console/api/consumers/delete", { account: a.name, stream: s.name, name: c.name }, `Delete consumer ${c.name}?`, `Consumer ${c.name} deleted.`)} aria-label={`Delete consumer ${c.name}`}>Delete</button></td>}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {admin && (s.consumer_detail ?? []).filter((c) => editingConsumer === `${a.name}/${s.name}/${c.name}`).map((c) => <EditConsumer key={`${c.name} ${JSON.stringify(c.config)}`} account={a.name} stream={s.name} consumer={c} onDone={setMessage} onClose={() => setEditingConsumer(null)} />)}
          {(s.consumer_detail ?? []).filter((c) => charted === `${a.name}/${s.name}/${c.name}`).map((c) => <BacklogChart key={c.name} account={a.name} stream={s.name} consumer={c.name} />)}
        </div>
      )))}
      <DeadLetters admin={admin} onDone={setMessage} />
    </section>
  );
}
