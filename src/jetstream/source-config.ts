// The `mirror` and `sources[]` of a stream configuration (nats-server's StreamSource), parsed and checked
// as nats-server's checkStreamCfg does: its errors, in its order. What a source does at run time is
// ./source.ts.
import { isValidPublishSubject, isValidSubscribeSubject } from "../subjects/subject.ts";
import { apiError } from "./errors.ts";

export interface ExternalStream {
  /** The origin's API prefix (`$JS.<domain>.API`; the clients turn `domain` into this). */
  api: string;
  /** Where deliveries go instead of `$JS.S.<id>` (rarely used; "" = the default). */
  deliver: string;
}

export interface SubjectTransformConfig {
  src: string;
  dest: string;
}

export interface StreamSourceConfig {
  name: string;
  opt_start_seq?: number;
  opt_start_time?: string;
  filter_subject?: string;
  subject_transforms?: SubjectTransformConfig[];
  external?: ExternalStream;
}

type Json = Record<string, unknown>;

function isValidName(name: unknown): name is string {
  return typeof name === "string" && name !== "" && !/[\s.*>\0]/.test(name);
}

function field<T>(r: Json, key: string, kind: "string" | "number" | "object" | "array"): T | undefined {
  const v = r[key];
  if (v === undefined || v === null) return undefined;
  const ok = kind === "array" ? Array.isArray(v) : kind === "object" ? typeof v === "object" && !Array.isArray(v) : typeof v === kind;
  if (!ok) throw apiError("InvalidJSON");
  return v as T;
}

/** One mirror or source as the API got it, its known fields kept (nats-server's struct). */
export function parseStreamSource(raw: unknown): StreamSourceConfig {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw apiError("InvalidJSON");
  const r = raw as Json;
  const out: StreamSourceConfig = { name: field<string>(r, "name", "string") ?? "" };
  const seq = field<number>(r, "opt_start_seq", "number");
  if (seq !== undefined && (!Number.isInteger(seq) || seq < 0)) throw apiError("InvalidJSON");
  if (seq) out.opt_start_seq = seq;
  const time = field<string>(r, "opt_start_time", "string");
  if (time) out.opt_start_time = time;
  const filter = field<string>(r, "filter_subject", "string");
  if (filter) out.filter_subject = filter;
  const transforms = field<unknown[]>(r, "subject_transforms", "array");
  if (transforms && transforms.length > 0) {
    out.subject_transforms = transforms.map((t) => {
      if (t === null || typeof t !== "object") throw apiError("InvalidJSON");
      return { src: field<string>(t as Json, "src", "string") ?? "", dest: field<string>(t as Json, "dest", "string") ?? "" };
    });
  }
  const external = field<Json>(r, "external", "object");
  if (external) out.external = { api: field<string>(external, "api", "string") ?? "", deliver: field<string>(external, "deliver", "string") ?? "" };
  return out;
}

/** nats-server's checks of a mirror against the rest of the stream's configuration. */
export function checkMirror(mirror: StreamSourceConfig, subjects: readonly string[], sources: readonly StreamSourceConfig[], firstSeq: number): void {
  if (firstSeq > 0) throw apiError("MirrorWithFirstSeq");
  if (subjects.length > 0) throw apiError("MirrorWithSubjects");
  if (sources.length > 0) throw apiError("MirrorWithSources");
  if (mirror.opt_start_seq && mirror.opt_start_time) throw apiError("MirrorWithStartSeqAndTime");
  if (mirror.external === undefined && !isValidName(mirror.name)) throw apiError("MirrorInvalidStreamName");
  if (mirror.filter_subject !== undefined && !isValidSubscribeSubject(mirror.filter_subject)) throw apiError("StreamInvalidConfig", { err: "mirror filter subject is not a valid subject" });
}

/** nats-server's checks of the sources: names, duplicates (by index name), filters. */
export function checkSources(sources: readonly StreamSourceConfig[]): void {
  const seen = new Set<string>();
  for (const s of sources) {
    if (!isValidName(s.name)) throw apiError("SourceInvalidStreamName");
    const iname = indexName(s);
    if (seen.has(iname)) throw apiError("SourceDuplicateDetected");
    seen.add(iname);
    if (s.filter_subject !== undefined && !isValidSubscribeSubject(s.filter_subject)) throw apiError("SourceInvalidSubjectFilter");
    for (const t of s.subject_transforms ?? []) {
      if (!isValidSubscribeSubject(t.src || ">")) throw apiError("SourceInvalidSubjectFilter");
      if (t.dest !== "" && !isValidPublishSubject(t.dest.replace(/\{\{[^}]*\}\}|\$\d+/g, "x"))) throw apiError("StreamInvalidConfig", { err: "source transform destination is invalid" });
    }
  }
}

/** nats-server's getHash: 8 characters of base 62 from SHA-256 (the api prefix in a source's index name). */
export function shortHash(text: string): string {
  const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  const sum = new Bun.CryptoHasher("sha256").update(text).digest();
  let out = "";
  for (let i = 0; i < 8; i++) out += digits[sum[i]! % 62];
  return out;
}

/**
 * nats-server 2.10's index name of a source: `<name>[:<hash of external api>] <filter or >> <dest or >>`;
 * its first token and the rest make the `Nats-Stream-Source` header (`<name…> <origin seq> <filter> <dest>`).
 */
export function indexName(s: StreamSourceConfig): string {
  const name = s.external !== undefined ? `${s.name}:${shortHash(s.external.api)}` : s.name;
  const transforms = s.subject_transforms ?? [];
  if (transforms.length === 0) return `${name} ${s.filter_subject || ">"} >`;
  return `${name} ${transforms.map((t) => t.src || ">").join("\f")} ${transforms.map((t) => t.dest || ">").join("\f")}`;
}

/**
 * nats-server's cycle check: following the local (not external) sources and mirrors from the new
 * configuration, reaching a stream already visited is a cycle (for a source, when its filter overlaps the
 * visited stream's subjects): 10052 `detected cycle`.
 */
export function checkSourceCycle(
  config: { name: string; subjects: readonly string[]; mirror?: StreamSourceConfig; sources?: readonly StreamSourceConfig[] },
  lookup: (name: string) => { name: string; subjects: readonly string[]; mirror?: StreamSourceConfig; sources?: readonly StreamSourceConfig[] } | undefined,
  collide: (a: string, b: string) => boolean,
): void {
  const visited = new Set<string>();
  const toVisit = [config];
  const cycle = () => {
    throw apiError("StreamInvalidConfig", { err: "detected cycle" });
  };
  while (toVisit.length > 0) {
    const c = toVisit.shift()!;
    visited.add(c.name);
    for (const s of c.sources ?? []) {
      if (s.external !== undefined) continue;
      if (visited.has(s.name)) {
        if (!s.filter_subject || c.subjects.some((x) => collide(x, s.filter_subject!))) cycle();
      } else {
        const next = s.name === config.name ? config : lookup(s.name);
        if (next !== undefined) toVisit.push(next);
      }
    }
    const m = c.mirror;
    if (m !== undefined && m.external === undefined) {
      if (visited.has(m.name)) cycle();
      const next = lookup(m.name);
      if (next !== undefined) toVisit.push(next);
    }
  }
}
