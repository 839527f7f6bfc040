// Accounts and permissions: each account's usage, limits, imports/exports and users (names only) with
// their publish/subscribe permissions; and a checker: may user U publish to / subscribe to S? (answered
// by the server's own permission code).
import { useState } from "preact/hooks";
import { getJson } from "./api.ts";
import { count } from "./format.ts";
import { usePoll } from "./live.ts";

interface Lists {
  allow?: string[] | null;
  deny?: string[] | null;
}

interface Account {
  name: string;
  is_system?: boolean;
  connections: number;
  subscriptions: number;
  jetstream: boolean;
  limits: { maxConnections: number; maxSubscriptions: number; maxPayload: number; maxLeafnodes: number } | null;
  exports: { kind: string; subject: string; accounts?: string[] | null }[];
  imports: { kind: string; account: string; subject: string; to?: string; prefix?: string }[];
  users: { name: string; permissions: { publish?: Lists | null; subscribe?: Lists | null; responses?: unknown } | null }[];
}

const limit = (n: number | undefined) => (n === undefined || n < 0 ? "unlimited" : count(n));
const lists = (l: Lists | null | undefined) => {
  if (!l) return "any";
  const parts: string[] = [];
  if (l.allow) parts.push(`allow ${l.allow.length === 0 ? "nothing" : l.allow.join(", ")}`);
  if (l.deny && l.deny.length > 0) parts.push(`deny ${l.deny.join(", ")}`);
  return parts.join("; ") || "any";
};

function Checker({ users }: { users: string[] }) {
  const [answer, setAnswer] = useState<{ allowed: boolean; why: string; question: string } | null>(null);
  const [error, setError] = useState<string | null>(null);
  async function submit(e: Event) {
    e.preventDefault();
    const f = new FormData(e.target as HTMLFormElement);
    const q = new URLSearchParams({ user: String(f.get("user")), op: String(f.get("op")), subject: String(f.get("subject")), queue: String(f.get("queue") ?? "") });
    try {
      const a = await getJson<{ allowed: boolean; why: string }>(`/console/api/permissions/check?${q}`);
      setAnswer({ ...a, question: `${f.get("user")} ${f.get("op") === "sub" ? "subscribe to" : "publish to"} ${f.get("subject")}` });
      setError(null);
    } catch (err) {
      setError((err as Error).message);
    }
  }
  return (
    <div class="detail">
      <h2>May a user …?</h2>
      <form class="inline" onSubmit={submit} aria-label="Permission checker">
        <label>User <select name="user">{users.map((u) => <option key={u} value={u}>{u}</option>)}</select></label>
        <label>Action <select name="op"><option value="pub">publish to</option><option value="sub">subscribe to</option></select></label>
        <label>Subject <input name="subject" required placeholder="orders.eu.new" /></label>
        <label>Queue group <input name="queue" placeholder="(none)" size={10} /></label>
        <button type="submit">Check</button>
      </form>
      {error && <p class="error">{error}</p>}
      {answer && (
        <p role="status" data-answer={answer.allowed ? "allowed" : "denied"} class={answer.allowed ? "allowed" : "denied"}>
          <b>{answer.allowed ? "Allowed" : "Denied"}</b>: may {answer.question}? {answer.why}.
        </p>
      )}
    </div>
  );
}

export function AccountsPage() {
  const accounts = usePoll(() => getJson<Account[]>("/console/api/accounts"));
  const all = accounts.data ?? [];
  const users = all.flatMap((a) => a.users.map((u) => u.name));
  return (
    <section>
      <h1>Accounts</h1>
      {accounts.error && <p class="error">{accounts.error}</p>}
      {users.length > 0 && <Checker users={users} />}
      {all.map((a) => (
        <div class="stream" key={a.name} data-account={a.name}>
          <h2>{a.name} {a.is_system && <span class="muted">(system account)</span>}</h2>
          <p class="muted">
            <span data-stat="connections">{count(a.connections)}</span> connections · {count(a.subscriptions)} subscriptions · JetStream {a.jetstream ? "on" : "off"}
            {a.limits && <> · limits: connections {limit(a.limits.maxConnections)}, subscriptions {limit(a.limits.maxSubscriptions)}, payload {limit(a.limits.maxPayload)}, leaf nodes {limit(a.limits.maxLeafnodes)}</>}
          </p>
          {(a.exports.length > 0 || a.imports.length > 0) && (
            <ul>
              {a.exports.map((x) => <li key={`e${x.subject}`}>exports {x.kind} <code>{x.subject}</code>{x.accounts ? ` to ${x.accounts.join(", ")}` : " to any account"}</li>)}
              {a.imports.map((x) => <li key={`i${x.account}${x.subject}`}>imports {x.kind} <code>{x.subject}</code> from {x.account}{x.to ? ` as ${x.to}` : x.prefix ? ` under ${x.prefix}.` : ""}</li>)}
            </ul>
          )}
          {a.users.length > 0 && (
            <div class="table-wrap">
              <table class="data" data-table="users">
                <thead><tr><th>User</th><th>Publish</th><th>Subscribe</th><th>Responses</th></tr></thead>
                <tbody>
                  {a.users.map((u) => (
                    <tr key={u.name} data-user={u.name}><td>{u.name}</td><td class="mono">{lists(u.permissions?.publish)}</td><td class="mono">{lists(u.permissions?.subscribe)}</td><td>{u.permissions?.responses ? "allowed" : ""}</td></tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </div>
      ))}
    </section>
  );
}
