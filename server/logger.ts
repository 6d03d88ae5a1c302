/**
 * Broker logging: one line per event on stderr, in one of two formats (--log-format):
 * - text (default): `TIME LEVEL component: message key=value ...`, readable by people and grep;
 * - json: one JSON object per line, `{"time","level","component","msg","fields"}`, for log
 *   shippers (time ISO-8601 UTC, level lower case, fields an object, always present).
 * Lines below the level (--log-level debug|info|warn|error) are not written.
 *
 * Invariants: a line is always one line (JSON escapes newlines; text quotes strings), and
 * logging never throws: a field that JSON cannot encode (a cycle, a BigInt) is written as a
 * string, an Error as its message.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'text' | 'json';
export const LOG_LEVELS: readonly Level[] = ['debug', 'info', 'warn', 'error'];
export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json'];
const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
// Read here too so that every process (CLI tools, tests) honours them; the broker sets them
// again from its configuration (config/broker-config.ts, logLevel and logFormat), which
// refuses a bad value with a clear error. Here a bad value falls back to the default.
let threshold = order[(process.env.SLUICE_LOG_LEVEL as Level) ?? 'info'] ?? order.info;
let json = process.env.SLUICE_LOG_FORMAT === 'json';

export function setLogLevel(level: Level): void {
  threshold = order[level];
}

export function setLogFormat(format: LogFormat): void {
  json = format === 'json';
}

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(component: string): Logger;
}

function formatText(fields?: Record<string, unknown>): string {
  if (!fields) return '';
  let s = '';
  for (const [k, v] of Object.entries(fields)) s += ` ${k}=${v instanceof Error ? JSON.stringify(v.message) : typeof v === 'string' ? JSON.stringify(v) : String(v)}`;
  return s;
}

/** An Error becomes its message, a BigInt its decimal string: JSON.stringify throws on the latter. */
function jsonValue(_key: string, v: unknown): unknown {
  if (v instanceof Error) return v.message;
  if (typeof v === 'bigint') return v.toString();
  return v;
}

function formatJson(time: string, level: Level, component: string, msg: string, fields?: Record<string, unknown>): string {
  const line = { time, level, component, msg, fields: fields ?? {} };
  try {
    return JSON.stringify(line, jsonValue);
  } catch {
    // A cycle (or a throwing toJSON): that field as a string, the others as they are; never a lost line.
    const safe: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(fields ?? {})) {
      try {
        JSON.stringify(v, jsonValue);
        safe[k] = v;
      } catch {
        safe[k] = String(v);
      }
    }
    return JSON.stringify({ ...line, fields: safe }, jsonValue);
  }
}

export function createLogger(component: string): Logger {
  const emit = (level: Level, msg: string, fields?: Record<string, unknown>) => {
    if (order[level] < threshold) return;
    const time = new Date().toISOString();
    process.stderr.write(json ? `${formatJson(time, level, component, msg, fields)}\n` : `${time} ${level.toUpperCase()} ${component}: ${msg}${formatText(fields)}\n`);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (c) => createLogger(`${component}.${c}`),
  };
}
