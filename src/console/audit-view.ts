// The Audit page's data: the newest lines of the audit log (audit_log), filtered by event type and user,
// newest first. Reads only the file's tail (TAIL_BYTES), asynchronously, so a large log costs nothing
// more; the lines hold no credential by construction (src/audit.ts).
import { open } from "node:fs/promises";

const TAIL_BYTES = 1 << 20;
const MAX_LINES = 500;

export interface AuditQuery {
  type: string;
  user: string;
  limit: number;
}

export async function auditTail(path: string, q: AuditQuery): Promise<{ lines: Record<string, unknown>[]; types: string[] }> {
  const f = await open(path, "r");
  let text: string;
  try {
    const { size } = await f.stat();
    const start = Math.max(0, size - TAIL_BYTES);
    const buf = Buffer.alloc(size - start);
    await f.read(buf, 0, buf.length, start);
    text = buf.toString("utf8");
    if (start > 0) text = text.slice(text.indexOf("\n") + 1); // the first line may be cut
  } finally {
    await f.close();
  }
  const all: Record<string, unknown>[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    try {
      all.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a line being written right now
    }
  }
  const types = [...new Set(all.map((l) => String(l.type)))].sort();
  const user = q.user.toLowerCase();
  const lines = all
    .filter((l) => (q.type === "" || l.type === q.type) && (user === "" || [l.user, l.console_user].some((u) => typeof u === "string" && u.toLowerCase().includes(user))))
    .reverse()
    .slice(0, Math.min(Math.max(q.limit, 1), MAX_LINES));
  return { lines, types };
}
