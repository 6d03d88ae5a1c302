/**
 * A tiny flag parser shared by the CLI commands and the bench. Each command declares its
 * flags; anything undeclared is an error (a typo must not be silently ignored).
 * Accepted forms: `--name value`, `--name=value`, `--flag` for booleans; `--` ends flags.
 */
import { DEFAULT_PORT } from '../../protocol/frame.ts';

export type FlagType = 'string' | 'int' | 'boolean';

export interface FlagSpec {
  type: FlagType;
  /** May be given more than once; the value is then an array. */
  multiple?: boolean;
  /** Smallest accepted value for 'int' flags. */
  min?: number;
}

export type FlagSpecs = Record<string, FlagSpec>;

export interface Parsed {
  positionals: string[];
  flags: Map<string, Array<string | number | boolean>>;
}

/** A mistake in how the command was called: printed with a pointer to --help, exit code 1. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function parseArgs(argv: readonly string[], specs: FlagSpecs): Parsed {
  const positionals: string[] = [];
  const flags = new Map<string, Array<string | number | boolean>>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('--') || arg === '-') {
      if (arg.startsWith('-') && arg !== '-' && !/^-\d/.test(arg)) throw new UsageError(`unknown option ${arg} (options are spelled --name)`);
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    const spec = specs[name];
    if (!spec) throw new UsageError(`unknown option --${name}`);
    let raw: string | undefined;
    if (spec.type === 'boolean') {
      if (eq > 0) throw new UsageError(`--${name} takes no value`);
    } else if (eq > 0) {
      raw = arg.slice(eq + 1);
    } else {
      raw = argv[++i];
      if (raw === undefined) throw new UsageError(`--${name} needs a value`);
    }
    const value = spec.type === 'boolean' ? true : spec.type === 'int' ? parseIntFlag(name, raw!, spec.min) : raw!;
    const list = flags.get(name);
    if (list && !spec.multiple) throw new UsageError(`--${name} given more than once`);
    if (list) list.push(value);
    else flags.set(name, [value]);
  }
  return { positionals, flags };
}

function parseIntFlag(name: string, raw: string, min = -Infinity): number {
  if (!/^-?\d+$/.test(raw)) throw new UsageError(`--${name} must be an integer, not ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new UsageError(`--${name} ${raw} is out of range`);
  if (n < min) throw new UsageError(`--${name} must be >= ${min}, not ${n}`);
  return n;
}

export function str(p: Parsed, name: string): string | undefined;
export function str(p: Parsed, name: string, dflt: string): string;
export function str(p: Parsed, name: string, dflt?: string): string | undefined {
  const v = p.flags.get(name);
  return v ? String(v[0]) : dflt;
}

export function int(p: Parsed, name: string): number | undefined;
export function int(p: Parsed, name: string, dflt: number): number;
export function int(p: Parsed, name: string, dflt?: number): number | undefined {
  const v = p.flags.get(name);
  return v ? (v[0] as number) : dflt;
}

export function bool(p: Parsed, name: string): boolean {
  return p.flags.has(name);
}

export function strs(p: Parsed, name: string): string[] {
  return (p.flags.get(name) ?? []).map(String);
}

/** Exactly `names` positionals, named for the error message. */
export function positionals(p: Parsed, names: string[], usage: string): string[] {
  if (p.positionals.length < names.length) throw new UsageError(`missing ${names.slice(p.positionals.length).join(' ')}; usage: ${usage}`);
  if (p.positionals.length > names.length) throw new UsageError(`unexpected argument ${JSON.stringify(p.positionals[names.length])}; usage: ${usage}`);
  return p.positionals;
}

/** acks as the wire wants it: 0, 1 or -1 ("all"). */
export function parseAcks(raw: string): 0 | 1 | -1 {
  if (raw === '0') return 0;
  if (raw === '1') return 1;
  if (raw === 'all' || raw === '-1') return -1;
  throw new UsageError(`--acks must be 0, 1 or all, not ${JSON.stringify(raw)}`);
}

export const DEFAULT_BOOTSTRAP = `127.0.0.1:${DEFAULT_PORT}`;

/** The environment variable every client command reads when --bootstrap is not given. */
export const BOOTSTRAP_ENV = 'SLUICE_BOOTSTRAP';

/** --bootstrap, else SLUICE_BOOTSTRAP (when not empty), else 127.0.0.1:9292. */
export function bootstrapOf(p: Parsed, env: Readonly<Record<string, string | undefined>> = process.env): string {
  return str(p, 'bootstrap') ?? (env[BOOTSTRAP_ENV] || DEFAULT_BOOTSTRAP);
}

/** `--config key=value` flags as a map; a key given twice is a usage error. */
export function parseConfigs(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new UsageError(`--config wants key=value, not ${JSON.stringify(kv)}`);
    const key = kv.slice(0, i);
    if (key in out) throw new UsageError(`--config ${key} given more than once`);
    out[key] = kv.slice(i + 1);
  }
  return out;
}
