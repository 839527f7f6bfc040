// Editing a consumer from the console: the settings nats-server lets an existing consumer change (its
// checkNewConsumerConfig refuses the deliver, ack and replay policies, the start sequence and time, heart
// beats, flow control and max_waiting; everything below it accepts), as form fields. The page draws its
// form from this table and the server applies the answers to the consumer's current config, which then goes
// to $JS.API.CONSUMER.CREATE.<stream>.<name> with action "update": nats-server's checks and error texts.
// Pure (no server imports): the page's bundle uses it too.
import { formatGoDuration, parseGoDuration } from "../config/duration.ts";

export type EditKind = "text" | "integer" | "duration" | "durations" | "boolean" | "subjects" | "metadata";

export interface EditableField {
  /** The form field's name; the config key, but for `filter_subjects` (filter_subject or filter_subjects). */
  key: string;
  label: string;
  kind: EditKind;
  /** Shown only for a pull or a push consumer (the others' settings). */
  only?: "pull" | "push";
  hint?: string;
}

export const EDITABLE_CONSUMER_FIELDS: readonly EditableField[] = [
  { key: "description", label: "Description", kind: "text" },
  { key: "filter_subjects", label: "Filter subjects", kind: "subjects", hint: "comma-separated; empty: all" },
  { key: "ack_wait", label: "Ack wait", kind: "duration", hint: "30s, 1m30s" },
  { key: "backoff", label: "Backoff", kind: "durations", hint: "1s, 5s, 30s" },
  { key: "max_deliver", label: "Max deliver", kind: "integer", hint: "-1: unlimited" },
  { key: "max_ack_pending", label: "Max ack pending", kind: "integer" },
  { key: "headers_only", label: "Headers only", kind: "boolean" },
  { key: "inactive_threshold", label: "Inactive threshold", kind: "duration", hint: "empty: never" },
  { key: "sample_freq", label: "Sample frequency", kind: "text", hint: "10%" },
  { key: "metadata", label: "Metadata", kind: "metadata", hint: "key=value, one a line" },
  { key: "max_batch", label: "Max batch", kind: "integer", only: "pull" },
  { key: "max_expires", label: "Max expires", kind: "duration", only: "pull" },
  { key: "max_bytes", label: "Max request bytes", kind: "integer", only: "pull" },
  { key: "rate_limit_bps", label: "Rate limit (bits/s)", kind: "integer", only: "push" },
];

/** Shown beside the form, not editable: nats-server refuses to change them ("… can not be updated"). */
export const FIXED_CONSUMER_FIELDS = ["deliver_policy", "ack_policy", "replay_policy", "max_waiting"] as const;

type Config = Record<string, unknown>;

const nsToText = (ns: unknown) => (typeof ns === "number" && ns > 0 ? formatGoDuration(ns / 1e6) : "");

function filters(c: Config): string[] {
  if (Array.isArray(c.filter_subjects) && c.filter_subjects.length > 0) return c.filter_subjects.map(String);
  return typeof c.filter_subject === "string" && c.filter_subject !== "" ? [c.filter_subject] : [];
}

/** A field's current value as the form shows it (a string, or a boolean for a checkbox). */
export function fieldValue(f: EditableField, c: Config): string | boolean {
  const v = c[f.key];
  switch (f.kind) {
    case "boolean":
      return v === true;
    case "duration":
      return nsToText(v);
    case "durations":
      return Array.isArray(v) ? v.map(nsToText).join(", ") : "";
    case "subjects":
      return filters(c).join(", ");
    case "metadata":
      return v && typeof v === "object" ? Object.entries(v as Record<string, string>).map(([k, x]) => `${k}=${x}`).join("\n") : "";
    case "integer":
      return typeof v === "number" ? String(v) : "";
    default:
      return typeof v === "string" ? v : "";
  }
}

export class EditError extends Error {}

/** A form answer as the config's value (undefined: take the key out, the server's default applies). */
function parse(f: EditableField, raw: unknown): unknown {
  if (f.kind === "boolean") return raw === true || raw === "true" || raw === "on";
  const text = String(raw ?? "").trim();
  const duration = (t: string) => {
    try {
      return Math.round(parseGoDuration(t) * 1e6); // ns on the wire
    } catch {
      throw new EditError(`${f.label}: ${JSON.stringify(t)} is not a duration (e.g. 30s, 1m30s, 500ms)`);
    }
  };
  if (text === "") return undefined;
  switch (f.kind) {
    case "integer": {
      if (!/^-?\d+$/.test(text)) throw new EditError(`${f.label}: ${JSON.stringify(text)} is not a whole number`);
      return Number(text);
    }
    case "duration":
      return duration(text);
    case "durations":
      return text.split(",").map((x) => x.trim()).filter(Boolean).map(duration);
    case "subjects":
      return text.split(",").map((x) => x.trim()).filter(Boolean);
    case "metadata": {
      const out: Record<string, string> = {};
      for (const line of text.split("\n").map((l) => l.trim()).filter(Boolean)) {
        const at = line.indexOf("=");
        if (at <= 0) throw new EditError(`${f.label}: ${JSON.stringify(line)} is not key=value`);
        out[line.slice(0, at).trim()] = line.slice(at + 1).trim();
      }
      return out;
    }
    default:
      return text;
  }
}

/**
 * The consumer's config with the form's answers applied (only the fields given, only the editable ones),
 * and the names of those that changed. Throws EditError for a value that is not one (a duration that is not).
 */
export function applyConsumerEdit(current: Config, answers: Record<string, unknown>): { config: Config; changed: string[] } {
  const config: Config = { ...current };
  const changed: string[] = [];
  for (const f of EDITABLE_CONSUMER_FIELDS) {
    if (!(f.key in answers)) continue;
    const next = parse(f, answers[f.key]);
    if (f.kind === "subjects") {
      const list = (next as string[] | undefined) ?? [];
      if (list.join("\0") === filters(current).join("\0")) continue;
      delete config.filter_subject;
      delete config.filter_subjects;
      if (list.length === 1) config.filter_subject = list[0];
      else if (list.length > 1) config.filter_subjects = list;
      changed.push(f.key);
      continue;
    }
    const before = current[f.key];
    const same = f.kind === "boolean" ? (before === true) === next : JSON.stringify(before ?? null) === JSON.stringify(next ?? null);
    if (same) continue;
    if (next === undefined || (f.kind === "boolean" && next === false)) delete config[f.key];
    else config[f.key] = next;
    changed.push(f.key);
  }
  return { config, changed };
}
