// Subjects: validation and wildcard matching, with nats-server's semantics (server/sublist.go).
//
// A subject is a JS string decoded from the wire as latin1, so one char is one byte and any byte
// value may appear. Tokens are separated by `.`. A token is a wildcard only when it is exactly `*`
// (one token) or exactly `>` (one or more tokens, last token only); `a*`, `*b`, `>>`, `>b` are
// ordinary literal tokens. Whitespace is what nats-server's IsValidSubject rejects: space, \t, \r,
// \n and \f. No other byte (not even NUL or 0x85/0xA0) is special.

const DOT = 0x2e; // .
const STAR = 0x2a; // *
const GT = 0x3e; // >

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a || c === 0x0c;
}

/**
 * A subject a client may subscribe to (nats-server's IsValidSubject): non-empty, no empty token,
 * `>` only as the whole last token, no whitespace. Wildcard tokens allowed.
 */
export function isValidSubscribeSubject(subject: string): boolean {
  const n = subject.length;
  if (n === 0) return false;
  let start = 0; // first char of the current token
  let sawFwc = false; // a previous token was `>`: nothing may follow
  for (let i = 0; i <= n; i++) {
    const c = i < n ? subject.charCodeAt(i) : DOT; // end of string closes the last token
    if (c === DOT) {
      if (i === start || sawFwc) return false;
      if (i - start === 1 && subject.charCodeAt(start) === GT) sawFwc = true;
      start = i + 1;
    } else if (c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a || c === 0x0c) {
      // isSpace, written out: the start validates the system account's subjects, and that tiny function
      // reached the DFG JIT's threshold there, which pages in the DFG compiler (~1.5 MiB idle RSS, issue 20).
      return false;
    }
  }
  return true;
}

/** A valid subject with no wildcard token: what a PUB may name (nats-server's IsValidPublishSubject). */
export function isValidPublishSubject(subject: string): boolean {
  return isValidSubscribeSubject(subject) && subjectIsLiteral(subject);
}

/** A queue group name: non-empty, no whitespace. nats-server checks nothing else (`a.b`, `>` are fine). */
export function isValidQueueName(queue: string): boolean {
  const n = queue.length;
  if (n === 0) return false;
  for (let i = 0; i < n; i++) if (isSpace(queue.charCodeAt(i))) return false;
  return true;
}

/**
 * True when no token is exactly `*` or `>`. Does not check validity (nats-server's subjectIsLiteral):
 * `foo*.bar` and `foo..bar` are "literal".
 */
export function subjectIsLiteral(subject: string): boolean {
  const n = subject.length;
  for (let i = 0; i < n; i++) {
    const c = subject.charCodeAt(i);
    if (
      (c === STAR || c === GT) &&
      (i === 0 || subject.charCodeAt(i - 1) === DOT) &&
      (i + 1 === n || subject.charCodeAt(i + 1) === DOT)
    ) {
      return false;
    }
  }
  return true;
}

/**
 * Does subscription subject `pattern` (assumed valid) match the published `subject`? Brute force,
 * token by token, no allocation. Agrees with Sublist.match, including its edge cases:
 * - a subject with an empty token (``, `a..b`, `.a`, `a.`) matches nothing;
 * - `*` and `>` in the *subject* are plain tokens: pattern `*`/`>` match them, a literal pattern
 *   token never does (a literal pattern token cannot be exactly `*` or `>`).
 */
export function subjectMatches(pattern: string, subject: string): boolean {
  const pl = pattern.length;
  const sl = subject.length;
  if (pl === 0 || sl === 0) return false;
  let pi = 0; // start of the current pattern token
  let si = 0; // start of the current subject token
  // One pass over both strings, char by char: this runs once per cached subject when a wildcard
  // subscription comes or goes, so it is kept to plain charCodeAt compares.
  for (;;) {
    const pc = pattern.charCodeAt(pi);
    const whole = pi + 1 === pl || pattern.charCodeAt(pi + 1) === DOT; // one-char pattern token
    if (pc === GT && whole) return restHasNoEmptyToken(subject, si);
    if (pc === STAR && whole) {
      const start = si;
      while (si < sl && subject.charCodeAt(si) !== DOT) si++;
      if (si === start) return false; // `*` needs a non-empty token
      pi++;
    } else {
      // A literal pattern token is non-empty, so a subject token equal to it is too.
      let c: number;
      while (pi < pl && (c = pattern.charCodeAt(pi)) !== DOT) {
        if (si >= sl || subject.charCodeAt(si) !== c) return false;
        pi++;
        si++;
      }
      if (si < sl && subject.charCodeAt(si) !== DOT) return false; // subject token is longer
    }
    // Both at a `.` or at their end.
    if (pi === pl) return si === sl;
    if (si === sl) return false;
    pi++;
    si++;
  }
}

// Do the tokens from `at` (a token start) to the end exist and are all non-empty?
function restHasNoEmptyToken(subject: string, at: number): boolean {
  const n = subject.length;
  if (at >= n || subject.charCodeAt(at) === DOT) return false;
  for (let i = at + 1; i < n; i++) {
    if (subject.charCodeAt(i) === DOT && (i + 1 === n || subject.charCodeAt(i + 1) === DOT)) return false;
  }
  return true;
}
