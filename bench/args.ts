// The scripts' flags: `--name VALUE` on the command line, else the default.

/** A numeric flag. */
export function numberArg(name: string, defaultValue: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : defaultValue;
}

/** A text flag (a name, a path, a list). */
export function stringArg(name: string, defaultValue: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : defaultValue;
}
