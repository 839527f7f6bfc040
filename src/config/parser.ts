// Builds the tree of a nats-server style config file from the lexer's tokens: maps keep their keys in file
// order, every key and value knows its file, line and column; sizes become numbers, `$VAR` references are
// resolved (from keys defined earlier in an enclosing block, then from the environment), and `include`
// pulls in another file, found relative to the including one.
import { absolutePath, includedPath, readConfigText } from "./config-file.ts";
import { LexError, lex, type Token } from "./lexer.ts";

export interface Position {
  /** The path as given (relative paths stay relative), or "" for text parsed without a file. */
  file: string;
  line: number;
  col: number;
}

export function formatPosition(pos: Position): string {
  return `${pos.file || "<config>"}:${pos.line}:${pos.col}`;
}

/** A config error, printed as `<file>:<line>:<col>: <message>` like nats-server's. */
export class ConfigError extends Error {
  constructor(
    readonly reason: string,
    readonly pos: Position | null,
  ) {
    super(pos ? `${formatPosition(pos)}: ${reason}` : reason);
  }
}

/** Several errors found in one pass (nats-server reports all of them, one per line). */
export class ConfigErrors extends Error {
  constructor(readonly errors: ConfigError[]) {
    super(errors.map((e) => e.message).join("\n"));
  }
}

export type ConfNode =
  | { kind: "string"; value: string; pos: Position }
  | { kind: "integer"; value: number; raw: string; pos: Position }
  | { kind: "float"; value: number; pos: Position }
  | { kind: "bool"; value: boolean; pos: Position }
  | { kind: "datetime"; value: Date; pos: Position }
  | { kind: "array"; value: ConfNode[]; pos: Position }
  | { kind: "map"; value: ConfMap; pos: Position };

export interface ConfEntry {
  /** The key as written (lookups by apply.ts are case-insensitive, as nats-server's). */
  key: string;
  /** Where the key is: errors about the entry point here, as nats-server's do. */
  pos: Position;
  node: ConfNode;
  /** Referenced as a `$variable` somewhere: such keys are definitions, not settings, when unknown. */
  usedAsVariable: boolean;
}

/** A block's entries in file order; a key given twice keeps its last value (at the later position). */
export type ConfMap = Map<string, ConfEntry>;

const MAX_INCLUDE_DEPTH = 16;

// Size suffixes as nats-server reads them: k/m/g… are powers of 1000, kb/ki/kib… powers of 1024.
const SUFFIX_POWER: Record<string, [number, number]> = {
  "": [1, 0], k: [1000, 1], m: [1000, 2], g: [1000, 3], t: [1000, 4], p: [1000, 5], e: [1000, 6],
};

function parseInteger(raw: string, pos: Position): number {
  const m = /^(-?\d+)(.*)$/.exec(raw);
  if (!m) throw new ConfigError(`expected integer, but got '${raw}'`, pos);
  const suffix = m[2]!.trim().toLowerCase();
  let base: number;
  let power: number;
  if (suffix in SUFFIX_POWER) [base, power] = SUFFIX_POWER[suffix]!;
  else if (/^[kmgtpe](b|i|ib)$/.test(suffix)) [base, power] = [1024, SUFFIX_POWER[suffix[0]!]![1]];
  else throw new ConfigError(`expected integer, but got '${raw}' (unknown size suffix '${m[2]}')`, pos);
  const n = BigInt(m[1]!) * BigInt(base) ** BigInt(power);
  // nats-server's range is int64. Past 2^53 a JS number is only close: apply.ts refuses such values
  // for the settings natter has ("value is too big"); they only occur in keys natter does not support yet.
  if (n > 2n ** 63n - 1n || n < -(2n ** 63n)) throw new ConfigError(`integer '${raw}' is out of the range`, pos);
  return Number(n);
}

type Context = { kind: "map"; map: ConfMap } | { kind: "array"; items: ConfNode[] };

class Parser {
  private readonly contexts: Context[] = [];
  private readonly keys: { key: string; pos: Position }[] = [];
  private readonly root: ConfMap = new Map();

  constructor(
    private readonly file: string,
    private readonly depth: number,
    private readonly seen: readonly string[],
  ) {}

  private pos(t: Token): Position {
    return { file: this.file, line: t.line, col: t.col };
  }

  parse(text: string): ConfMap {
    let tokens: Token[];
    try {
      tokens = lex(text);
    } catch (error) {
      if (error instanceof LexError) {
        throw new ConfigError(`Parse error: ${error.message}`, { file: this.file, line: error.line, col: error.col });
      }
      throw error;
    }
    this.contexts.push({ kind: "map", map: this.root });
    const stack: { node: ConfNode }[] = [];
    for (const t of tokens) {
      switch (t.type) {
        case "eof":
          return this.root;
        case "key":
          this.keys.push({ key: t.value, pos: this.pos(t) });
          break;
        case "mapStart": {
          const map: ConfMap = new Map();
          stack.push({ node: { kind: "map", value: map, pos: this.pos(t) } });
          this.contexts.push({ kind: "map", map });
          break;
        }
        case "mapEnd":
          this.contexts.pop();
          this.set(stack.pop()!.node);
          break;
        case "arrayStart": {
          const items: ConfNode[] = [];
          stack.push({ node: { kind: "array", value: items, pos: this.pos(t) } });
          this.contexts.push({ kind: "array", items });
          break;
        }
        case "arrayEnd":
          this.contexts.pop();
          this.set(stack.pop()!.node);
          break;
        case "string":
          this.set({ kind: "string", value: t.value, pos: this.pos(t) });
          break;
        case "bool": {
          const v = t.value.toLowerCase();
          this.set({ kind: "bool", value: v === "true" || v === "yes" || v === "on", pos: this.pos(t) });
          break;
        }
        case "integer":
          this.set({ kind: "integer", value: parseInteger(t.value, this.pos(t)), raw: t.value, pos: this.pos(t) });
          break;
        case "float": {
          const value = Number(t.value);
          if (!Number.isFinite(value)) throw new ConfigError(`float '${t.value}' is out of the range`, this.pos(t));
          this.set({ kind: "float", value, pos: this.pos(t) });
          break;
        }
        case "datetime":
          this.set({ kind: "datetime", value: new Date(t.value), pos: this.pos(t) });
          break;
        case "variable":
          this.set(this.lookup(t));
          break;
        case "include":
          this.include(t);
          break;
      }
    }
    return this.root;
  }

  /** Puts a finished value into the current array, or under the pending key of the current map. */
  private set(node: ConfNode): void {
    const ctx = this.contexts[this.contexts.length - 1]!;
    if (ctx.kind === "array") {
      ctx.items.push(node);
      return;
    }
    const { key, pos } = this.keys.pop()!;
    // A later definition wins and takes the later place in file order.
    ctx.map.delete(key);
    ctx.map.set(key, { key, pos, node, usedAsVariable: false });
  }

  /** `$name`: a key defined earlier in this block or an enclosing one, else the environment variable. */
  private lookup(t: Token): ConfNode {
    const name = t.value;
    const pos = this.pos(t);
    // A bcrypt hash written unquoted ($2a$…) is a string, not a reference.
    if (/^2[aby]\$/.test(name)) return { kind: "string", value: `$${name}`, pos };
    for (let i = this.contexts.length - 1; i >= 0; i--) {
      const ctx = this.contexts[i]!;
      if (ctx.kind !== "map") continue;
      const entry = ctx.map.get(name);
      if (entry) {
        entry.usedAsVariable = true;
        return { ...entry.node, pos } as ConfNode;
      }
    }
    const env = process.env[name];
    if (env !== undefined) {
      // The environment's text is read as a config value would be: 1MB is a size, true a boolean.
      let parsed: ConfMap;
      try {
        parsed = new Parser("", this.depth, this.seen).parse(`pk=${env}`);
      } catch (error) {
        const reason = error instanceof ConfigError ? error.reason : String(error);
        throw new ConfigError(`variable reference for '${name}' on line ${t.line} could not be parsed: ${reason}`, pos);
      }
      const value = parsed.get("pk");
      if (value) return { ...value.node, pos } as ConfNode;
    }
    throw new ConfigError(`variable reference for '${name}' on line ${t.line} can not be found`, pos);
  }

  /** `include file`: the other file's top-level keys land in the current block. */
  private include(t: Token): void {
    const pos = this.pos(t);
    const target = includedPath(this.file, t.value);
    const resolved = absolutePath(target);
    if (this.depth >= MAX_INCLUDE_DEPTH || this.seen.includes(resolved)) {
      throw new ConfigError(`error parsing include file '${t.value}', include cycle or nesting deeper than ${MAX_INCLUDE_DEPTH}`, pos);
    }
    let text: string;
    try {
      text = readConfigText(target);
    } catch (error) {
      throw new ConfigError(`error parsing include file '${t.value}', ${describeFsError(error, target)}`, pos);
    }
    const included = new Parser(target, this.depth + 1, [...this.seen, resolved]).parse(text);
    const ctx = this.contexts[this.contexts.length - 1]!;
    if (ctx.kind !== "map") throw new ConfigError("include is only allowed where keys are", pos);
    for (const [key, entry] of included) {
      ctx.map.delete(key);
      ctx.map.set(key, entry);
    }
  }
}

/** `open <path>: no such file or directory`, as Go words it. */
export function describeFsError(error: unknown, file: string): string {
  const e = error as NodeJS.ErrnoException;
  const what: Record<string, string> = {
    ENOENT: "no such file or directory",
    EACCES: "permission denied",
    EISDIR: "is a directory",
  };
  return `open ${file}: ${(e.code && what[e.code]) ?? e.message}`;
}

/** Parses config text; `file` is used for positions and to find includes. Throws ConfigError. */
export function parseConfig(text: string, file = ""): ConfMap {
  return new Parser(file, 0, file ? [absolutePath(file)] : []).parse(text);
}

/** Reads and parses a config file. Throws ConfigError (with the file's path) when it cannot. */
export function parseConfigFile(file: string): ConfMap {
  let text: string;
  try {
    text = readConfigText(file);
  } catch (error) {
    throw new ConfigError(describeFsError(error, file), null);
  }
  return parseConfig(text, file);
}
