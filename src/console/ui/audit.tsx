// Audit: the audit log (audit_log), newest first, filterable by event type and by user (a client's
// user or a console user).
import { useState } from "preact/hooks";
import { getJson } from "./api.ts";
import { usePoll } from "./live.ts";

interface Audit {
  enabled: boolean;
  types: string[];
  lines: Record<string, unknown>[];
}

/** The fields of a line worth a column of their own; the rest go to "details". */
const MAIN = new Set(["timestamp", "type", "user", "console_user"]);

export function AuditPage() {
  const [type, setType] = useState("");
  const [user, setUser] = useState("");
  const audit = usePoll(() => getJson<Audit>(`/console/api/audit?${new URLSearchParams({ type, user })}`), [type, user]);
  const a = audit.data;
  if (a && !a.enabled) return <section><h1>Audit</h1><p>The audit log is off (<code>audit_log: /path/audit.log</code> turns it on).</p></section>;
  return (
    <section>
      <h1>Audit</h1>
      {audit.error && <p class="error">{audit.error}</p>}
      <form class="inline" onSubmit={(e) => e.preventDefault()} aria-label="Audit filter">
        <label>Event <select name="type" value={type} onChange={(e) => setType((e.target as HTMLSelectElement).value)}>
          <option value="">any</option>
          {(a?.types ?? []).map((t) => <option key={t} value={t}>{t}</option>)}
        </select></label>
        <label>User <input name="user" type="search" value={user} placeholder="any" onInput={(e) => setUser((e.target as HTMLInputElement).value)} /></label>
      </form>
      <div class="table-wrap">
        <table class="data" data-table="audit">
          <thead><tr><th>Time</th><th>Event</th><th>User</th><th>Details</th></tr></thead>
          <tbody>
            {(a?.lines ?? []).map((l, i) => (
              <tr key={`${String(l.timestamp)}-${i}`} data-type={String(l.type)}>
                <td>{new Date(String(l.timestamp)).toLocaleTimeString()}</td>
                <td>{String(l.type)}</td>
                <td>{String(l.console_user ?? l.user ?? "")}{l.console_user !== undefined ? " (console)" : ""}</td>
                <td class="mono wrap">{Object.entries(l).filter(([k]) => !MAIN.has(k)).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ")}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
