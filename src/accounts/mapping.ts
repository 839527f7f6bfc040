// Subject mapping for stream and service imports, token by token, as nats-server maps them
// (accounts.go addMappedStreamImportWithClaim / addServiceImport with a strict subject transform):
// - the same subject on both sides: the published subject is used as is;
// - a literal source: the destination is a literal too, used as is;
// - otherwise the destination's `*` tokens take the source's wildcards in order (`$N` and
//   `{{wildcard(N)}}` name one explicitly), and its trailing `>` takes whatever the source's `>` matched.
//   Every source wildcard must be used (nats-server's strict transform), so no part of a subject is lost.
//   `prefix: p` is the destination `p.<source>`, mapped with one string concatenation.

const PWC = "*";
const FWC = ">";
const EXPLICIT = /^(?:\$(\d+)|\{\{\s*wildcard\s*\(\s*(\d+)\s*\)\s*\}\})$/i;

const Kind = { Identity: 0, Constant: 1, Prefix: 2, Tokens: 3 } as const;
type Kind = (typeof Kind)[keyof typeof Kind];

export class SubjectMapping {
  private constructor(
    readonly source: string,
    readonly destination: string,
    private readonly kind: Kind,
    /** Tokens: a literal token, or the position in the published subject whose token goes there. */
    private readonly plan: readonly (string | number)[],
    /** Tokens: where the source's `>` starts (-1: none). */
    private readonly restFrom: number,
  ) {}

  /** Throws (a one-line message) when the destination cannot take the source's wildcards. */
  static compile(source: string, destination: string): SubjectMapping {
    if (source === destination) return new SubjectMapping(source, destination, Kind.Identity, [], -1);
    const src = source.split(".");
    const dst = destination.split(".");
    const wildcardAt: number[] = []; // position of the source's n-th `*`
    let restFrom = -1;
    src.forEach((token, at) => {
      if (token === PWC) wildcardAt.push(at);
      else if (token === FWC) restFrom = at;
    });
    if (wildcardAt.length === 0 && restFrom < 0) {
      if (dst.some((t) => t === PWC || t === FWC || EXPLICIT.test(t))) {
        throw new Error(`mapping from literal subject "${source}" to "${destination}" cannot have wildcards`);
      }
      return new SubjectMapping(source, destination, Kind.Constant, [], -1);
    }
    if (destination.endsWith(`.${source}`) && !dst.slice(0, dst.length - src.length).some((t) => t === PWC || t === FWC || EXPLICIT.test(t))) {
      return new SubjectMapping(source, destination, Kind.Prefix, [destination.slice(0, destination.length - source.length)], -1);
    }
    const plan: (string | number)[] = [];
    const used = new Set<number>();
    let nextStar = 0;
    let hasRest = false;
    dst.forEach((token, at) => {
      if (token === FWC) {
        if (at !== dst.length - 1) throw new Error(`"${destination}": ">" must be the last token`);
        if (restFrom < 0) throw new Error(`"${destination}" has ">" but "${source}" does not`);
        hasRest = true;
        return;
      }
      const explicit = EXPLICIT.exec(token);
      let wildcard = -1;
      if (token === PWC) wildcard = nextStar++;
      else if (explicit !== null) wildcard = Number(explicit[1] ?? explicit[2]) - 1;
      if (wildcard < 0) {
        plan.push(token);
        return;
      }
      if (wildcard >= wildcardAt.length) throw new Error(`"${destination}" uses more wildcards than "${source}" has`);
      used.add(wildcard);
      plan.push(wildcardAt[wildcard]!);
    });
    if (used.size !== wildcardAt.length) throw new Error(`"${destination}" does not use every wildcard of "${source}"`);
    if (restFrom >= 0 && !hasRest) throw new Error(`"${source}" ends with ">" but "${destination}" does not`);
    return new SubjectMapping(source, destination, Kind.Tokens, plan, restFrom);
  }

  /** The destination subject for a published subject that matches the source. */
  map(subject: string): string {
    switch (this.kind) {
      case Kind.Identity:
        return subject;
      case Kind.Constant:
        return this.destination;
      case Kind.Prefix:
        return (this.plan[0] as string) + subject;
      case Kind.Tokens: {
        const tokens = subject.split(".");
        const out: string[] = [];
        for (const p of this.plan) out.push(typeof p === "string" ? p : tokens[p]!);
        if (this.restFrom >= 0) out.push(...tokens.slice(this.restFrom));
        return out.join(".");
      }
    }
  }
}

/** Whether every subject `sub` matches is also matched by `sup` (an import within an export). */
export function isSubsetSubject(sub: string, sup: string): boolean {
  const a = sub.split(".");
  const b = sup.split(".");
  for (let k = 0; k < b.length; k++) {
    const t = b[k]!;
    if (t === FWC) return k < a.length;
    if (k >= a.length) return false;
    const s = a[k]!;
    if (t === PWC) {
      if (s === FWC) return false;
      continue;
    }
    if (s !== t) return false;
  }
  return a.length === b.length;
}

/** A stream import's subject in the importing account: `to`, else `prefix.subject`, else the subject. */
export function streamImportSubject(imp: { subject: string; to?: string; prefix?: string }): string {
  if (imp.to !== undefined && imp.to !== "") return imp.to;
  if (imp.prefix !== undefined && imp.prefix !== "") return imp.prefix.endsWith(".") ? imp.prefix + imp.subject : `${imp.prefix}.${imp.subject}`;
  return imp.subject;
}
