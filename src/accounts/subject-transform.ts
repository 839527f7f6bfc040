// A subject transform for account `mappings` (nats-server's subject_transform.go, the non-strict kind):
// a destination's tokens are literals, `$N` / `{{wildcard(N)}}` (the source's N-th `*`), or one of the
// mapping functions below over a source wildcard's token; a trailing `>` takes what the source's `>`
// matched. Unlike an import's transform (./mapping.ts) a destination need not use every wildcard.
//
//   {{partition(n, i, j…)}}       FNV-1a (32-bit) of tokens i, j… concatenated, modulo n
//   {{splitFromLeft(i, p)}}       token i split in two after p characters (unchanged when it cannot be)
//   {{splitFromRight(i, p)}}      token i split in two p characters from its end
//   {{sliceFromLeft(i, n)}}       token i cut into tokens of n characters from the left (the rest last)
//   {{sliceFromRight(i, n)}}      the same from the right (the rest first)
//   {{split(i, delimiter)}}       token i split on a delimiter (empty parts dropped)
// Error texts are nats-server's (`invalid mapping destination: … in <token>`).

const FUNCTION = /^\{\{\s*([A-Za-z]+)\s*\((.*)\)\s*\}\}$/;
/** The functions nats-server 2.10 accepts in a config's mapping (ValidateMappingDestination). */
const FUNCTIONS = ["partition", "wildcard", "splitfromleft", "splitfromright", "slicefromleft", "slicefromright", "split"] as const;
type FunctionName = (typeof FUNCTIONS)[number];

const INVALID = "invalid mapping destination";
export class TransformError extends Error {}
const fail = (what: string, token: string): never => {
  throw new TransformError(`${INVALID}: ${what} in ${token}`);
};

/** One destination token: a literal, or a function of source tokens (by their position in the subject). */
type Step =
  | { kind: "literal"; text: string }
  | { kind: "wildcard"; at: number }
  | { kind: "partition"; at: number[]; buckets: number }
  | { kind: "splitfromleft" | "splitfromright" | "slicefromleft" | "slicefromright"; at: number; n: number }
  | { kind: "split"; at: number; delimiter: string };

export class SubjectTransform {
  private constructor(
    readonly source: string,
    readonly destination: string,
    private readonly steps: readonly Step[] | null,
    /** Where the source's `>` starts (the destination ends with `>` then too); -1: none. */
    private readonly restFrom: number,
  ) {}

  /** Throws TransformError (nats-server's texts) for a destination that cannot be built from the source. */
  static compile(source: string, destination: string): SubjectTransform {
    const src = source.split(".");
    const dst = destination.split(".");
    checkDestination(dst);
    const wildcardAt: number[] = [];
    let restFrom = -1;
    src.forEach((t, i) => {
      if (t === "*") wildcardAt.push(i);
      else if (t === ">") restFrom = i;
    });
    const dstRest = dst[dst.length - 1] === ">";
    if (dst.some((t) => t === "*") || (restFrom >= 0) !== dstRest) throw new TransformError("invalid subject");
    if (wildcardAt.length === 0 && restFrom < 0) {
      for (const t of dst) if (parseToken(t, 0, wildcardAt) !== null) fail("wildcard index out of range", t);
      return new SubjectTransform(source, destination, null, -1);
    }
    const steps: Step[] = [];
    for (const t of dst) {
      if (t === ">") break;
      if (wildcardAt.length === 0 && parseToken(t, 0, wildcardAt) !== null) fail("wildcard index out of range", t);
      steps.push(parseToken(t, wildcardAt.length, wildcardAt) ?? { kind: "literal", text: t });
    }
    return new SubjectTransform(source, destination, steps, restFrom);
  }

  /** The destination for a published subject that matches the source. */
  transform(subject: string): string {
    if (this.steps === null) return this.destination;
    const tokens = subject.split(".");
    const out: string[] = [];
    for (const step of this.steps) out.push(apply(step, tokens));
    if (this.restFrom >= 0) out.push(...tokens.slice(this.restFrom));
    return out.join(".");
  }
}

/** nats-server's ValidateMappingDestination: no empty token, nothing after `>`, known functions only. */
function checkDestination(tokens: string[]): void {
  let rest = false;
  for (const t of tokens) {
    if (t.length === 0 || rest) fail("invalid subject", t);
    if (t.length > 4 && t.startsWith("{{") && t.endsWith("}}")) {
      const m = FUNCTION.exec(t);
      if (m === null || !(FUNCTIONS as readonly string[]).includes(m[1]!.toLowerCase())) fail("unknown function", t);
      continue;
    }
    if (t === ">") rest = true;
    else if (/[\t\n\f\r ]/.test(t)) throw new TransformError(`${INVALID}: invalid subject`);
  }
}

const integer = (s: string, token: string): number => {
  const v = s.trim();
  if (!/^[+-]?\d+$/.test(v)) fail("function argument is invalid or in the wrong format", token);
  return Number(v);
};

/**
 * A destination token's step, or null for a literal. `$N` and the functions name the source's N-th `*`
 * (1-based); `wildcards` is how many there are, `wildcardAt` where each is in the subject.
 */
function parseToken(token: string, wildcards: number, wildcardAt: readonly number[]): Step | null {
  const position = (n: number): number => {
    if (n > wildcards) fail("wildcard index out of range", `${token}: [${n}]`);
    return wildcardAt[n - 1] ?? 0; // nats-server: index 0 reads the subject's first token
  };
  if (token.length > 1 && token[0] === "$") {
    if (!/^\d+$/.test(token.slice(1))) return null; // `$foo` is a literal, as nats-server leaves it
    return { kind: "wildcard", at: position(Number(token.slice(1))) };
  }
  const m = token.length > 4 && token.startsWith("{{") && token.endsWith("}}") ? FUNCTION.exec(token) : null;
  if (m === null) return null;
  const name = m[1]!.toLowerCase() as FunctionName;
  const args = m[2]!.split(/,\s*/);
  const need = (n: number) => {
    if (args.length < n || (args.length === 1 && args[0] === "")) fail("not enough arguments passed to the function", token);
    if (args.length > n) fail("too many arguments passed to the function", token);
  };
  switch (name) {
    case "wildcard":
      need(1);
      return { kind: "wildcard", at: position(integer(args[0]!, token)) };
    case "partition": {
      if (args.length < 2) fail("not enough arguments passed to the function", token);
      const buckets = integer(args[0]!, token);
      return { kind: "partition", buckets, at: args.slice(1).map((a) => position(integer(a, token))) };
    }
    case "split": {
      need(2);
      const delimiter = args[1]!;
      if (delimiter.includes(" ") || delimiter.includes(".")) fail("function argument is invalid or in the wrong format", token);
      return { kind: "split", at: position(integer(args[0]!, token)), delimiter };
    }
    default:
      need(2);
      return { kind: name, at: position(integer(args[0]!, token)), n: integer(args[1]!, token) };
  }
}

function apply(step: Step, tokens: readonly string[]): string {
  switch (step.kind) {
    case "literal":
      return step.text;
    case "wildcard":
      return tokens[step.at] ?? "";
    case "partition":
      return String(fnv1a32(step.at.map((i) => tokens[i] ?? "").join("")) % step.buckets);
    case "splitfromleft": {
      const t = tokens[step.at] ?? "";
      return step.n > 0 && step.n < t.length ? `${t.slice(0, step.n)}.${t.slice(step.n)}` : t;
    }
    case "splitfromright": {
      const t = tokens[step.at] ?? "";
      return step.n > 0 && step.n < t.length ? `${t.slice(0, t.length - step.n)}.${t.slice(t.length - step.n)}` : t;
    }
    case "slicefromleft": {
      const t = tokens[step.at] ?? "";
      if (!(step.n > 0 && step.n < t.length)) return t;
      const parts: string[] = [];
      for (let i = 0; i < t.length; i += step.n) parts.push(t.slice(i, i + step.n));
      return parts.join(".");
    }
    case "slicefromright": {
      const t = tokens[step.at] ?? "";
      if (!(step.n > 0 && step.n < t.length)) return t;
      const parts: string[] = [];
      const remainder = t.length % step.n;
      if (remainder > 0) parts.push(t.slice(0, remainder));
      for (let i = remainder; i < t.length; i += step.n) parts.push(t.slice(i, i + step.n));
      return parts.join(".");
    }
    case "split": {
      // Go's loop, as nats-server writes it (empty parts dropped, separators only between kept ones).
      const parts = (tokens[step.at] ?? "").split(step.delimiter);
      let out = "";
      parts.forEach((part, j) => {
        out += part;
        if (j < parts.length - 1 && parts[j + 1] !== "" && !(j === 0 && part === "")) out += ".";
      });
      return out;
    }
  }
}

/** FNV-1a, 32 bits (Go's hash/fnv New32a), over the subject's bytes (subjects here are latin1: one char a byte). */
function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(text, "latin1")) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}
