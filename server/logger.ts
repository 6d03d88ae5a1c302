/**
 * Broker logging: one line per event on stderr, `LEVEL component: message key=value ...`,
 * so that logs stay readable by people and by grep. SLUICE_LOG_LEVEL=debug|info|warn|error.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';
const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
// Read here too so that every process (CLI tools, tests) honours it; the broker sets it again
// from its configuration (config/broker-config.ts, logLevel), which checks the value.
let threshold = order[(process.env.SLUICE_LOG_LEVEL as Level) ?? 'info'] ?? order.info;

export function setLogLevel(level: Level): void {
  threshold = order[level];
}

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(component: string): Logger;
}

function format(fields?: Record<string, unknown>): string {
  if (!fields) return '';
  let s = '';
  for (const [k, v] of Object.entries(fields)) s += ` ${k}=${v instanceof Error ? JSON.stringify(v.message) : typeof v === 'string' ? JSON.stringify(v) : String(v)}`;
  return s;
}

export function createLogger(component: string): Logger {
  const emit = (level: Level, msg: string, fields?: Record<string, unknown>) => {
    if (order[level] < threshold) return;
    process.stderr.write(`${new Date().toISOString()} ${level.toUpperCase()} ${component}: ${msg}${format(fields)}\n`);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (c) => createLogger(`${component}.${c}`),
  };
}
