/**
 * The web console (issue 12): server-rendered HTML over node:http on --console-host and
 * --console-port, off unless --console-port is set (0 = off).
 *
 * Why server-rendered: no build step and no client code at all; every page is a plain GET
 * that works without JavaScript, every value from the broker is escaped in one place
 * (html.ts), and the CSP sent with each page forbids scripts, so even a missed escape could
 * not run code.
 *
 * Why through the client library over the real protocol (one Admin to the broker's own
 * listener, plus a Consumer or Producer per browse or replay): the console sees exactly what
 * any client sees, cluster-wide (other brokers' groups, partition leaders elsewhere), it
 * goes through the same request validation, limits and, once the security lane adds them,
 * the same authentication and ACLs; and the broker's request handlers and produce/fetch hot
 * path are untouched (the console is just another client on loopback).
 *
 * Read-only unless access.ts says otherwise (--console-allow-writes true): every mutating
 * action is a POST carrying the console's CSRF token, checked against ConsoleAccess.
 *
 * On a loopback --console-host (the default) requests must name a loopback host in Host (421
 * otherwise), so a foreign page re-pointed at 127.0.0.1 by DNS rebinding cannot read it.
 *
 * Bounds: CONSOLE_CONNECTIONS_MAX connections, RENDERS_IN_FLIGHT_MAX pages being built at
 * once (more get 503), each page answered within PAGE_TIMEOUT_MS (else 504), request
 * headers within HEADERS_TIMEOUT_MS, form bodies of at most FORM_BYTES_MAX; page sizes and
 * bytes shown per value are bounded by the pages (message-browser.ts, pages/messages.ts).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Admin } from '../client/admin.ts';
import type { ClientSecurity } from '../client/cluster.ts';
import { ErrorCode, SluiceError } from '../protocol/errors.ts';
import type { Logger } from '../server/logger.ts';
import type { ConsoleAccess } from './access.ts';
import { html } from './html.ts';
import { page } from './layout.ts';
import { BadRequest, Forbidden, type PageContext, type Rendered } from './page-context.ts';
import { brokersPage } from './pages/brokers.ts';
import { cancelDelayedAction, delayedPage } from './pages/delayed.ts';
import { dlqPage, replayAction } from './pages/dlq.ts';
import { deleteGroupAction, groupPage, groupsPage } from './pages/groups.ts';
import { messagesPage } from './pages/messages.ts';
import { deleteTopicAction, topicPage, topicsPage } from './pages/topics.ts';

export const CONSOLE_CONNECTIONS_MAX = 32;
export const RENDERS_IN_FLIGHT_MAX = 8;
export const PAGE_TIMEOUT_MS = 10_000;
export const HEADERS_TIMEOUT_MS = 10_000;
export const KEEP_ALIVE_TIMEOUT_MS = 5_000;
export const FORM_BYTES_MAX = 16 * 1024;
/** The Admin's per-request timeout: below the page timeout, so a page reports the broker's silence itself. */
const ADMIN_REQUEST_TIMEOUT_MS = 8_000;

const CSS = readFileSync(new URL('./console.css', import.meta.url), 'utf8');

/** No scripts, no frames, forms only to the console itself. */
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

type Page = (ctx: PageContext) => Promise<Rendered>;
type Action = (ctx: PageContext, form: URLSearchParams) => Promise<Rendered>;

const PAGES: Record<string, Page | undefined> = {
  '/brokers': brokersPage,
  '/topics': topicsPage,
  '/topic': topicPage,
  '/messages': messagesPage,
  '/groups': groupsPage,
  '/group': groupPage,
  '/dlq': dlqPage,
  '/delayed': delayedPage,
};

const ACTIONS: Record<string, Action | undefined> = {
  '/dlq/replay': replayAction,
  '/delayed/cancel': cancelDelayedAction,
  '/topic/delete': deleteTopicAction,
  '/group/delete': deleteGroupAction,
};

export interface ConsoleOptions {
  /** host:port of this broker's listener, as the console's clients connect to it. */
  bootstrap: string;
  /** TLS and SASL of the console's clients: the broker's TLS, and the console user (--console-sasl-username). */
  security: ClientSecurity;
  brokerId: number;
  access: ConsoleAccess;
}

export class ConsoleServer {
  private server: http.Server | null = null;
  private admin: Admin | null = null;
  private options: ConsoleOptions | null = null;
  /** Pages being built, counted until each settles (also one whose answer timed out). */
  private rendersInFlight = 0;
  /** Whether the Host header must name a loopback host (the console listens on loopback only). */
  private loopbackOnly = false;
  /** Forms carry it; a POST without it (another site's form) is refused. New each start. */
  private readonly csrf = randomBytes(18).toString('base64url');

  constructor(private readonly log: Logger) {}

  /** Binds host:port (0 is never passed: it means off to the caller); pages answer 503 until serve(). */
  async start(host: string, port: number): Promise<number> {
    const server = http.createServer((req, res) => this.handle(req, res));
    server.maxConnections = CONSOLE_CONNECTIONS_MAX;
    server.headersTimeout = HEADERS_TIMEOUT_MS;
    server.requestTimeout = PAGE_TIMEOUT_MS + HEADERS_TIMEOUT_MS;
    server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(new Error(`web console (--console-host ${host} --console-port ${port}): ${e.message}`)));
      server.listen(port, host, () => {
        server.removeAllListeners('error');
        resolve();
      });
    });
    server.on('error', (e) => this.log.error('console error', { error: e }));
    const bound = (server.address() as AddressInfo).port;
    // On loopback (the default) only loopback names are accepted in Host: a page on another
    // site whose name is re-pointed at 127.0.0.1 (DNS rebinding) cannot read the console.
    // Any port: an SSH tunnel or a port forward may put the console on another local port.
    this.loopbackOnly = LOOPBACK_HOSTS.has(host);
    return bound;
  }

  /** The broker serves: from now on pages are built, through an Admin connected to it. */
  serve(options: ConsoleOptions): void {
    this.options = options;
    this.admin = new Admin({ bootstrap: options.bootstrap, clientId: 'sluice-console', requestTimeoutMs: ADMIN_REQUEST_TIMEOUT_MS, ...options.security });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.loopbackOnly && !LOOPBACK_HOST_HEADER.test(req.headers.host ?? '')) return this.plain(res, 421, 'the console listens on loopback and answers only to Host 127.0.0.1, localhost or [::1]\n');
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://console.invalid');
    } catch {
      return this.plain(res, 400, 'bad request target\n');
    }
    const path = url.pathname;
    if (path === '/console.css') {
      res.writeHead(200, { 'content-type': 'text/css; charset=utf-8', 'cache-control': 'max-age=300', 'x-content-type-options': 'nosniff' }).end(CSS);
      return;
    }
    if (path === '/' || path === '') {
      res.writeHead(302, { location: '/brokers' }).end();
      return;
    }
    const pageFn = Object.hasOwn(PAGES, path) ? PAGES[path] : undefined;
    const action = Object.hasOwn(ACTIONS, path) ? ACTIONS[path] : undefined;
    if (!pageFn && !action) return this.send(res, 404, 'Not found', html`<p>No console page at <code>${path}</code>.</p><p><a href="/brokers">Brokers</a></p>`);
    const method = req.method ?? 'GET';
    if (pageFn && method !== 'GET' && method !== 'HEAD') return this.plain(res, 405, 'method not allowed\n', 'GET, HEAD');
    if (action && method !== 'POST') return this.plain(res, 405, 'method not allowed: actions are POSTed by the console\'s forms\n', 'POST');
    if (!this.admin || !this.options) return this.plain(res, 503, 'the broker is starting\n');
    if (this.rendersInFlight >= RENDERS_IN_FLIGHT_MAX) return this.plain(res, 503, 'the console is busy; try again\n');
    this.rendersInFlight++;
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new PageTimeout()), PAGE_TIMEOUT_MS);
    });
    const work = (async (): Promise<Rendered> => {
      const ctx: PageContext = { admin: this.admin!, bootstrap: this.options!.bootstrap, security: this.options!.security, brokerId: this.options!.brokerId, req, query: url.searchParams, access: this.options!.access, csrf: this.csrf, deadlineAtMs: started + PAGE_TIMEOUT_MS };
      if (pageFn) return pageFn(ctx);
      const form = await readForm(req);
      // A POST must come from the console's own form: its token, and no foreign Origin.
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== 'null' && originHost(origin) !== req.headers.host) throw new Forbidden('cross-origin form refused');
      if (!sameToken(form.get('csrf') ?? '', this.csrf)) throw new Forbidden('the form is stale or not the console\'s (missing CSRF token): reload the page and try again');
      return action!(ctx, form);
    })();
    Promise.race([work, timeout]).then(
      (r) => this.send(res, r.status ?? 200, r.title, r.body, r.section, method === 'HEAD'),
      (e: unknown) => this.fail(res, e, path),
    ).finally(() => clearTimeout(timer));
    // A page that times out still finishes (or fails) in the background, its result dropped;
    // it counts against RENDERS_IN_FLIGHT_MAX until then.
    work.then(
      () => this.rendersInFlight--,
      () => this.rendersInFlight--,
    );
  }

  private fail(res: http.ServerResponse, e: unknown, path: string): void {
    if (e instanceof PageTimeout) return this.send(res, 504, 'Timed out', html`<p class="bad">The broker did not answer within ${PAGE_TIMEOUT_MS} ms.</p>`);
    if (e instanceof BadRequest || e instanceof RangeError) return this.send(res, 400, 'Bad request', html`<p class="bad">${e.message}</p>`);
    if (e instanceof Forbidden) return this.send(res, 403, 'Not allowed', html`<p class="bad">${e.message}</p>`);
    if (e instanceof SluiceError && e.code === ErrorCode.AUTHORIZATION_FAILED) return this.send(res, 403, 'Not allowed', html`<p class="bad">${e.message}</p><p>The console reads as its --console-sasl-username user; the broker's ACLs for that user decide what it may see and do.</p>`);
    if (e instanceof SluiceError && e.code === ErrorCode.REQUEST_TIMED_OUT) return this.send(res, 504, 'Timed out', html`<p class="bad">${e.message}</p>`);
    if (e instanceof SluiceError && NOT_FOUND.has(e.code)) return this.send(res, 404, 'Not found', html`<p class="bad">${e.message}</p>`);
    if (e instanceof SluiceError) return this.send(res, 502, 'The broker refused', html`<p class="bad">${e.message}</p>`);
    this.log.warn('console page failed', { path, error: e as Error });
    this.send(res, 500, 'Error', html`<p class="bad">${(e as Error)?.message ?? String(e)}</p>`);
  }

  private send(res: http.ServerResponse, status: number, title: string, body: ReturnType<typeof html>, section = '', headOnly = false): void {
    if (res.headersSent) return;
    const text = page({ title, section, writable: this.options?.access.writable ?? false, brokerId: this.options?.brokerId ?? -1 }, body).text;
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', ...SECURITY_HEADERS });
    res.end(headOnly ? undefined : text);
  }

  private plain(res: http.ServerResponse, status: number, text: string, allow?: string): void {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...(allow ? { allow } : {}), ...(status === 503 ? { 'retry-after': '1' } : {}) }).end(text);
  }

  /** Stops listening, closes open console connections and the console's broker clients. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    const admin = this.admin;
    this.admin = null;
    await admin?.close().catch(() => {});
    if (!server?.listening) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}

class PageTimeout extends Error {}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '::1']);
const LOOPBACK_HOST_HEADER = /^(127\.0\.0\.1|localhost|\[::1\])(:\d{1,5})?$/i;

/** Broker errors that mean the page's topic, group or delayed message does not exist: 404, not 502. */
const NOT_FOUND = new Set<number>([ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.GROUP_ID_NOT_FOUND, ErrorCode.DELAYED_MESSAGE_NOT_FOUND]);

/** The host:port of an Origin header; null when it is not a URL (then it matches no host). */
function originHost(origin: string): string | null {
  try {
    return new URL(origin).host;
  } catch {
    return null;
  }
}

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** An application/x-www-form-urlencoded body of at most FORM_BYTES_MAX. */
function readForm(req: http.IncomingMessage): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    const type = req.headers['content-type'] ?? '';
    if (!type.startsWith('application/x-www-form-urlencoded')) {
      req.resume();
      reject(new BadRequest('actions take an application/x-www-form-urlencoded form'));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > FORM_BYTES_MAX) {
        // Answered at once; the rest is read and dropped (the request timeout bounds how long),
        // so the client sees the 400 rather than a reset connection.
        req.removeAllListeners('data');
        req.resume();
        reject(new BadRequest(`form larger than ${FORM_BYTES_MAX} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}
