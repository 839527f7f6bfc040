// `tls { verify_and_map: true }`: the client certificate names the user (nats-server's auth.go,
// checkClientTLSCertSubject and the lookup processClientOrLeafAuthentication gives it). Tried in this
// order, the first user name that matches wins:
// 1. each email SAN, then each DNS SAN, then each URI SAN, as a user name exactly;
// 2. the subject as a distinguished name (RFC 4514, as nats-server's internal/ldap reads it): a user name
//    that parses as a DN equal to the certificate's (same RDNs in the same order, attribute types
//    case-insensitive), then one with the same RDNs in another order;
// 3. the subject as Go's pkix writes it (RFC 2253 order: `CN=alice,OU=eng,O=Acme,C=US`) followed by
//    its domain components (`,DC=example,DC=com`), when it has any;
// 4. that subject string alone.
// A certificate with no email SAN, no URI SAN and an empty subject maps to nobody (as nats-server).
import type { AttributeValue, CertificateIdentity } from "./x509.ts";

/** Go's crypto/x509/pkix attribute names (the only attributes its Name keeps). */
const PKIX_NAMES: Readonly<Record<string, string>> = {
  "2.5.4.6": "C", "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.3": "CN", "2.5.4.5": "SERIALNUMBER",
  "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.9": "STREET", "2.5.4.17": "POSTALCODE",
};

/** nats-server's internal/ldap attribute names: pkix's and DC. */
const LDAP_NAMES: Readonly<Record<string, string>> = { ...PKIX_NAMES, "0.9.2342.19200300.100.1.25": "DC" };

const DC = "0.9.2342.19200300.100.1.25";

/** The order Go's pkix.Name.ToRDNSequence writes its fields in (reversed when written as a string). */
const PKIX_ORDER = ["2.5.4.6", "2.5.4.8", "2.5.4.7", "2.5.4.9", "2.5.4.17", "2.5.4.10", "2.5.4.11", "2.5.4.3", "2.5.4.5"];

/** One RDN: attributes with their type names. */
type Rdn = { type: string; value: string }[];

/**
 * The subject as Go's `cert.Subject.ToRDNSequence().String()`: only the attributes pkix.Name keeps, grouped
 * per type in its fixed order (CN and SERIALNUMBER keep their last value), written last group first.
 */
export function pkixSubjectString(subject: readonly (readonly AttributeValue[])[]): string {
  const values = new Map<string, string[]>();
  for (const rdn of subject) {
    for (const atv of rdn) {
      if (atv.value === null || PKIX_NAMES[atv.oid] === undefined) continue;
      const single = atv.oid === "2.5.4.3" || atv.oid === "2.5.4.5";
      if (single) values.set(atv.oid, [atv.value]);
      else values.set(atv.oid, [...(values.get(atv.oid) ?? []), atv.value]);
    }
  }
  const groups: string[] = [];
  for (const oid of PKIX_ORDER) {
    const vs = values.get(oid);
    if (vs === undefined || vs.length === 0 || (vs.length === 1 && vs[0] === "" && (oid === "2.5.4.3" || oid === "2.5.4.5"))) continue;
    groups.push(vs.map((v) => `${PKIX_NAMES[oid]}=${escapeGo(v)}`).join("+"));
  }
  return groups.reverse().join(",");
}

/** Go's RDNSequence.String escaping of a value. */
function escapeGo(value: string): string {
  let out = "";
  const chars = [...value];
  chars.forEach((c, k) => {
    let escape = false;
    if (",+\"\\<>;".includes(c)) escape = true;
    else if (c === " ") escape = k === 0 || k === chars.length - 1;
    else if (c === "#") escape = k === 0;
    out += escape ? `\\${c}` : c;
  });
  return out;
}

/** The subject as nats-server's ldap.FromRawCertSubject: RDNs last first; null when an attribute is not one it names. */
export function subjectDn(subject: readonly (readonly AttributeValue[])[]): Rdn[] | null {
  const dn: Rdn[] = [];
  for (let i = subject.length - 1; i >= 0; i--) {
    const rdn = subject[i]!;
    if (rdn.length === 0) continue;
    const attrs: Rdn = [];
    for (let j = rdn.length - 1; j >= 0; j--) {
      const atv = rdn[j]!;
      const type = LDAP_NAMES[atv.oid];
      if (type === undefined || atv.value === null) return null;
      attrs.push({ type, value: atv.value });
    }
    dn.push(attrs);
  }
  return dn;
}

/** A user name read as a DN (nats-server's ldap.ParseDN, RFC 4514); null when it is not one. */
export function parseDn(text: string): Rdn[] | null {
  const dn: Rdn[] = [];
  let rdn: Rdn = [];
  let type = "";
  let buffer: number[] = [];
  let escaping = false;
  let trailingSpaces = 0;
  const take = () => {
    const s = Buffer.from(buffer.slice(0, buffer.length - trailingSpaces)).toString("utf8");
    buffer = [];
    trailingSpaces = 0;
    return s;
  };
  const bytes = Buffer.from(text, "utf8");
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (escaping) {
      trailingSpaces = 0;
      escaping = false;
      if (' "#+,;<=>\\'.includes(String.fromCharCode(c))) {
        buffer.push(c);
        continue;
      }
      if (i + 1 >= bytes.length) return null;
      const hex = bytes.subarray(i, i + 2).toString("latin1");
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) return null;
      buffer.push(parseInt(hex, 16));
      i++;
    } else if (c === 0x5c /* \ */) {
      trailingSpaces = 0;
      escaping = true;
    } else if (c === 0x3d /* = */) {
      type = take();
      if (bytes[i + 1] === 0x23 /* # */) return null; // BER-encoded values: unsupported, as nats-server
    } else if (c === 0x2c /* , */ || c === 0x2b /* + */) {
      if (type === "") return null;
      rdn.push({ type, value: take() });
      type = "";
      if (c === 0x2c) {
        dn.push(rdn);
        rdn = [];
      }
    } else if (c === 0x20 && buffer.length === 0) {
      continue; // leading spaces
    } else {
      trailingSpaces = c === 0x20 ? trailingSpaces + 1 : 0;
      buffer.push(c);
    }
  }
  if (buffer.length > 0) {
    if (type === "") return null;
    rdn.push({ type, value: take() });
    dn.push(rdn);
  }
  return dn;
}

function sameRdn(a: Rdn, b: Rdn): boolean {
  const has = (x: Rdn, y: Rdn) => y.every((v) => x.some((w) => w.type.toLowerCase() === v.type.toLowerCase() && w.value === v.value));
  return a.length === b.length && has(a, b) && has(b, a);
}

/** RDNs equal in order (ldap DN.Equal). */
export function dnEqual(a: Rdn[], b: Rdn[]): boolean {
  return a.length === b.length && a.every((r, i) => sameRdn(r, b[i]!));
}

/** The same RDNs in any order (ldap DN.RDNsMatch). */
export function dnRdnsMatch(a: Rdn[], b: Rdn[]): boolean {
  return a.length === b.length && a.every((r) => b.some((o) => sameRdn(r, o)));
}

/**
 * The configured user name the certificate maps to, or null. `names` are the users that may log in this
 * way (the `users` of `authorization` and of the accounts).
 */
export function mapCertificateToUser(cert: CertificateIdentity, names: ReadonlySet<string>): string | null {
  const subject = pkixSubjectString(cert.subject);
  if (cert.emails.length === 0 && subject === "" && cert.uris.length === 0) return null;
  for (const candidate of [...cert.emails, ...cert.dnsNames, ...cert.uris]) if (names.has(candidate)) return candidate;
  const dn = subjectDn(cert.subject);
  if (dn !== null) {
    const parsed: [string, Rdn[]][] = [];
    for (const name of names) {
      const userDn = parseDn(name);
      if (userDn === null) continue;
      if (dnEqual(userDn, dn)) return name;
      parsed.push([name, userDn]);
    }
    for (const [name, userDn] of parsed) if (dnRdnsMatch(userDn, dn)) return name;
  }
  const dcs = cert.subject.flatMap((rdn) => rdn.filter((a) => a.oid === DC && a.value !== null).map((a) => `DC=${a.value}`));
  if (dcs.length > 0) {
    const withDcs = `${subject},${dcs.join(",")}`;
    if (names.has(withDcs)) return withDcs;
  }
  return names.has(subject) ? subject : null;
}
