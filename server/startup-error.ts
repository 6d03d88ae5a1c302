/**
 * One line for a broker that cannot start because of how it was configured or where it runs
 * (port in use, unknown host, a data dir it cannot create or write): an operator's mistake
 * to be named, not a bug, so no stack trace. Anything else returns null and main prints the
 * stack, as for any bug.
 *
 * Invariant: only Node system errors with one of the codes below are described; their
 * `syscall`/`path`/`address` fields name what failed.
 */
import type { BrokerConfig } from './config/broker-config.ts';

interface SystemError extends Error {
  code?: string;
  syscall?: string;
  path?: string;
  address?: string;
  port?: number;
  hostname?: string;
}

const FILE_CODES = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'ENOSPC', 'EEXIST', 'EISDIR', 'ENOENT', 'EDQUOT', 'ELOOP', 'ENAMETOOLONG']);

export function describeStartupError(e: unknown, c: Pick<BrokerConfig, 'host' | 'port' | 'dataDir'>): string | null {
  const err = e as SystemError;
  if (!err || typeof err !== 'object' || typeof err.code !== 'string') return null;
  const where = `${c.host}:${c.port}`;
  switch (err.code) {
    case 'EADDRINUSE':
      return `${where} is already in use by another process (EADDRINUSE): stop it, or choose another --port / SLUICE_PORT (0 picks a free one)`;
    case 'EADDRNOTAVAIL':
      return `cannot listen on ${where}: ${c.host} is not an address of this machine (EADDRNOTAVAIL); use one of its addresses, 127.0.0.1, or 0.0.0.0 for all`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
      return `cannot listen on ${where}: host ${JSON.stringify(err.hostname ?? c.host)} does not resolve (${err.code})`;
    case 'EACCES':
      if (err.syscall === 'listen' || err.syscall === 'bind') return `not allowed to listen on ${where} (EACCES): ports below 1024 need privileges; choose another --port`;
      break;
  }
  if (FILE_CODES.has(err.code) && err.path !== undefined) {
    return `data dir ${JSON.stringify(c.dataDir)}: cannot ${err.syscall ?? 'use'} ${JSON.stringify(err.path)} (${err.code}); choose a writable --data-dir / SLUICE_DATA_DIR`;
  }
  return null;
}
