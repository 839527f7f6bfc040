// Subjects: the busiest subjects right now (sampled by the server, src/console/top-subjects.ts) and the
// subscription interest as a tree of subject tokens, wildcards included (from /subsz?subs=1).
import { getJson } from "./api.ts";
import { bytes, count, rate } from "./format.ts";
import { usePoll } from "./live.ts";

interface Top {
  sample_every: number;
  max_subjects: number;
  top: { subject: string; msgs_per_sec: number; bytes_per_sec: number; total_estimate: number }[];
}

interface Sub {
  subject: string;
  qgroup?: string;
  cid: number;
  msgs: number;
}

interface Subsz {
  num_subscriptions: number;
  num_cache: number;
  num_matches: number;
  cache_hit_rate: number;
  subscriptions_list?: Sub[];
}

/** One token of the interest tree: the subscriptions that end here, and the tokens below. */
interface Node {
  token: string;
  subs: Sub[];
  children: Map<string, Node>;
  /** Subscriptions here and below. */
  total: number;
}

function buildTree(subs: Sub[]): Node {
  const root: Node = { token: "", subs: [], children: new Map(), total: 0 };
  for (const s of subs) {
    let node = root;
    node.total++;
    for (const token of s.subject.split(".")) {
      let next = node.children.get(token);
      if (next === undefined) {
        next = { token, subs: [], children: new Map(), total: 0 };
        node.children.set(token, next);
      }
      next.total++;
      node = next;
    }
    node.subs.push(s);
  }
  return root;
}

function TreeNode({ node, path }: { node: Node; path: string }) {
  const subject = path ? `${path}.${node.token}` : node.token;
  const wildcard = node.token === "*" || node.token === ">";
  const queues = [...new Set(node.subs.map((s) => s.qgroup).filter(Boolean))];
  const label = (
    <>
      <span class={wildcard ? "token wildcard" : "token"}>{node.token}</span>
      <span class="muted"> {node.total} sub{node.total === 1 ? "" : "s"}</span>
      {node.subs.length > 0 && <span class="muted"> · {node.subs.length} on <code>{subject}</code>{queues.length > 0 ? ` · queue ${queues.join(", ")}` : ""}</span>}
    </>
  );
  const kids = [...node.children.values()].sort((a, b) => a.token.localeCompare(b.token));
  if (kids.length === 0) return <li data-subject={subject}>{label}</li>;
  return (
    <li data-subject={subject}>
      <details open>
        <summary>{label}</summary>
        <ul>{kids.map((k) => <TreeNode key={k.token} node={k} path={subject} />)}</ul>
      </details>
    </li>
  );
}

export function SubjectsPage() {
  const top = usePoll(() => getJson<Top>("/console/api/subjects"));
  const subsz = usePoll(() => getJson<Subsz>("/subsz?subs=1&limit=10000"));
  const list = subsz.data?.subscriptions_list ?? [];
  const tree = buildTree(list);
  return (
    <section>
      <h1>Subjects</h1>
      {(top.error || subsz.error) && <p class="error">{top.error ?? subsz.error}</p>}
      <h2>Busiest subjects</h2>
      {top.data && (
        <p class="muted">
          Sampled: one message in {top.data.sample_every}, at most {top.data.max_subjects} subjects kept; rates are smoothed over a few seconds and good to about ±{top.data.sample_every} msgs/s.
        </p>
      )}
      <div class="table-wrap">
        <table class="data" data-table="top-subjects">
          <thead><tr><th>Subject</th><th class="num">Msgs/s</th><th class="num">Bytes/s</th><th class="num">Messages (estimate)</th></tr></thead>
          <tbody>
            {(top.data?.top ?? []).map((t) => (
              <tr key={t.subject} data-subject={t.subject}><td class="mono">{t.subject}</td><td class="num">{rate(t.msgs_per_sec)}</td><td class="num">{bytes(t.bytes_per_sec)}/s</td><td class="num">{count(t.total_estimate)}</td></tr>
            ))}
          </tbody>
        </table>
      </div>
      <h2>Interest <span class="muted" data-field="num_subscriptions">{subsz.data ? count(subsz.data.num_subscriptions) : ""}</span></h2>
      {subsz.data && (
        <p class="muted">
          {count(subsz.data.num_subscriptions)} subscriptions · {count(subsz.data.num_cache)} cached subjects · {count(subsz.data.num_matches)} matches · cache hit rate {(subsz.data.cache_hit_rate * 100).toFixed(1)}%
        </p>
      )}
      <ul class="tree" data-tree="interest">
        {[...tree.children.values()].sort((a, b) => a.token.localeCompare(b.token)).map((n) => <TreeNode key={n.token} node={n} path="" />)}
      </ul>
    </section>
  );
}
