// Account subject mappings (nats-server's `mappings` / `maps`, accounts.go AddWeightedMappings and
// selectMappedSubject): a message a client publishes on a subject that matches a mapping's source is
// published on the destination instead. With several weighted destinations one is drawn per message
// (weights in percent); when they add up to less than 100, the rest keeps the original subject. The first
// mapping (in config order) whose source matches wins: a literal source by equality, a wildcard one by
// matching.
//
// Applied where nats-server applies them: to what clients publish (before their publish permissions are
// checked, so those apply to the mapped subject), not to what routes bring (the origin node mapped it).
import { subjectIsLiteral, subjectMatches } from "../subjects/subject.ts";
import type { MappingOptions } from "./options.ts";
import { SubjectTransform } from "./subject-transform.ts";

interface Destination {
  readonly transform: SubjectTransform | null; // null: the original subject
  /** Cumulative weight: drawn when the random number (0–99) is below it. */
  readonly upTo: number;
}

interface Mapping {
  readonly source: string;
  readonly literal: boolean;
  readonly destinations: readonly Destination[];
}

export class AccountMappings {
  /** The first byte of every source, or null when a source starts with a wildcard (anything may match). */
  private readonly firstBytes: Uint8Array | null;

  private constructor(
    private readonly mappings: readonly Mapping[],
    /** What it was compiled from (JetStream domains add theirs to an account's: src/jetstream/domain.ts). */
    readonly options: readonly MappingOptions[],
  ) {
    let first: Uint8Array | null = new Uint8Array(256);
    for (const m of mappings) {
      const c = m.source.charCodeAt(0);
      if (m.source.startsWith("*") || m.source.startsWith(">")) first = null;
      if (first !== null) first[c & 255] = 1;
    }
    this.firstBytes = first;
  }

  /**
   * Whether a subject starting with byte `b` may be mapped: lets the publish paths skip decoding the
   * subject for select() (a JetStream domain's mappings all start with `$`; most subjects do not).
   */
  mayMatch(b: number): boolean {
    return this.firstBytes === null || this.firstBytes[b] === 1;
  }

  /** Compiles the mappings; throws (nats-server's texts) on a destination that cannot be built. */
  static compile(options: readonly MappingOptions[]): AccountMappings | null {
    if (options.length === 0) return null;
    const mappings: Mapping[] = [];
    for (const options_ of options) {
      // Published subjects reach select() as latin1 strings (one char a byte): config subjects are made so too.
      const m = { source: wire(options_.source), destinations: options_.destinations.map((d) => ({ subject: wire(d.subject), weight: d.weight })) };
      const weighted = m.destinations.map((d) => ({ transform: SubjectTransform.compile(m.source, d.subject), weight: d.weight, original: d.subject === m.source }));
      const total = weighted.reduce((sum, d) => sum + d.weight, 0);
      // nats-server: the original subject takes what the weights leave, unless it is listed itself.
      const list: { transform: SubjectTransform | null; weight: number }[] = weighted.map((d) => ({ transform: d.transform, weight: d.weight }));
      if (total !== 100 && !weighted.some((d) => d.original)) list.push({ transform: null, weight: list.length === 0 ? 100 : 100 - total });
      list.sort((a, b) => a.weight - b.weight);
      let upTo = 0;
      const destinations = list.map((d) => ({ transform: d.transform, upTo: (upTo += d.weight) }));
      const mapping = { source: m.source, literal: subjectIsLiteral(m.source), destinations };
      const at = mappings.findIndex((x) => x.source === m.source);
      if (at >= 0) mappings[at] = mapping; // a later mapping of the same source replaces it, as nats-server
      else mappings.push(mapping);
    }
    return new AccountMappings(mappings, options);
  }

  /** The subject to publish on instead of `subject`, or null to keep it. */
  select(subject: string): string | null {
    let mapping: Mapping | undefined;
    for (const m of this.mappings) {
      if (m.literal ? m.source === subject : subjectMatches(m.source, subject)) {
        mapping = m;
        break;
      }
    }
    if (mapping === undefined) return null;
    const dests = mapping.destinations;
    let chosen: Destination | undefined;
    if (dests.length === 1 && dests[0]!.upTo === 100) chosen = dests[0];
    else {
      const draw = (Math.random() * 100) | 0;
      chosen = dests.find((d) => draw < d.upTo);
    }
    if (chosen === undefined || chosen.transform === null) return null;
    const mapped = chosen.transform.transform(subject);
    return mapped === subject ? null : mapped;
  }
}

/** A config string as the bytes a client would send, one char a byte. */
function wire(text: string): string {
  return Buffer.from(text, "utf8").toString("latin1");
}

