// The REST client of doc/api.md: JSON over same-origin HTTPS with the
// session cookie, the session's CSRF token on every write, and one place
// where errors become values the pages can show.
//
// - A write (POST, PATCH, DELETE) carries X-CSRF-Token once logged in.
// - A 401 from any call but the login itself ends the session: listeners
//   of onSessionEnded are told (the console returns to the login page).
// - An answer that is not 2xx throws ApiError with the vault's `code` and
//   `message` ({"error": {"code", "message"}}), or a generic one when the
//   body is not that JSON. A network failure is ApiError(0, "network").

import type { LoginAnswer, Me } from './types';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** The role may not do this (shown inline, never as a crash). */
  get forbidden(): boolean {
    return this.status === 403 && this.code !== 'csrf';
  }
}

export type SessionEndReason = 'expired' | 'csrf';

export interface ApiOptions {
  /** The fetch to use (tests pass a stub). Default: the browser's. */
  fetch?: typeof fetch;
  /** Prefix of every route. Default "/api/v1". */
  base?: string;
  /** Where the CSRF token survives a reload of the page. Default: sessionStorage when present. */
  storage?: Pick<Storage, 'getItem' | 'setItem' | 'removeItem'> | null;
}

export type Query = Record<string, string | number | boolean | null | undefined>;

const kCsrfKey = 'cairn.csrf';

function defaultStorage(): ApiOptions['storage'] {
  try {
    return typeof sessionStorage !== 'undefined' ? sessionStorage : null;
  } catch {
    return null;
  }
}

export function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const parts: string[] = [];
  for (const [k, v] of Object.entries(query)) {
    if (v === null || v === undefined || v === '') continue;
    parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  }
  return parts.length ? `${path}?${parts.join('&')}` : path;
}

export class Api {
  private readonly fetchImpl: typeof fetch;
  private readonly base: string;
  private readonly storage: ApiOptions['storage'];
  private csrf: string | null;
  private readonly listeners = new Set<(reason: SessionEndReason) => void>();

  constructor(options: ApiOptions = {}) {
    this.fetchImpl = options.fetch ?? ((input, init) => fetch(input, init));
    this.base = options.base ?? '/api/v1';
    this.storage = options.storage === undefined ? defaultStorage() : options.storage;
    this.csrf = this.storage?.getItem(kCsrfKey) ?? null;
  }

  /** Whether a session is believed open (a CSRF token is held). */
  get hasSession(): boolean {
    return this.csrf !== null;
  }

  onSessionEnded(listener: (reason: SessionEndReason) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private setCsrf(token: string | null): void {
    this.csrf = token;
    if (token === null) this.storage?.removeItem(kCsrfKey);
    else this.storage?.setItem(kCsrfKey, token);
  }

  private endSession(reason: SessionEndReason): void {
    this.setCsrf(null);
    for (const l of [...this.listeners]) l(reason);
  }

  async request<T>(
    method: string,
    path: string,
    options: {
      query?: Query;
      body?: unknown;
      /** Send no X-CSRF-Token (the login itself). */
      noCsrf?: boolean;
      /** A 401 or 403 csrf is this call's own answer, not the end of the session. */
      quiet?: boolean;
    } = {},
  ): Promise<T> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    const init: RequestInit = { method, headers, credentials: 'same-origin', cache: 'no-store' };
    if (options.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(options.body);
    }
    if (method !== 'GET' && method !== 'HEAD' && this.csrf !== null && !options.noCsrf) {
      headers['X-CSRF-Token'] = this.csrf;
    }
    let response: Response;
    try {
      response = await this.fetchImpl(this.base + withQuery(path, options.query), init);
    } catch (e) {
      throw new ApiError(0, 'network', e instanceof Error ? e.message : String(e));
    }
    const text = await response.text().catch(() => '');
    let json: unknown = undefined;
    if (text !== '') {
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
    }
    if (!response.ok) {
      const err = (json as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
      const code = typeof err?.code === 'string' ? err.code : `http_${response.status}`;
      const message =
        typeof err?.message === 'string' && err.message !== ''
          ? err.message
          : `${response.status} ${response.statusText || 'error'}`.trim();
      const error = new ApiError(response.status, code, message);
      if (!options.quiet) {
        if (response.status === 401) this.endSession('expired');
        else if (response.status === 403 && code === 'csrf') this.endSession('csrf');
      }
      throw error;
    }
    if (json === undefined) {
      if (text === '') return {} as T;
      throw new ApiError(response.status, 'bad_answer', 'the vault answered something that is not JSON');
    }
    return json as T;
  }

  get<T>(path: string, query?: Query): Promise<T> {
    return this.request<T>('GET', path, { query });
  }
  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('POST', path, { body });
  }
  patch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, { body });
  }
  del<T>(path: string): Promise<T> {
    return this.request<T>('DELETE', path);
  }

  /** Password login. */
  async login(user: string, password: string): Promise<LoginAnswer> {
    const a = await this.request<LoginAnswer>('POST', '/login', {
      body: { user, password },
      noCsrf: true,
      quiet: true,
    });
    this.setCsrf(a.csrf_token);
    return a;
  }

  /** Login with the person's client certificate: no body; the TLS handshake names the account. */
  async loginWithCertificate(): Promise<LoginAnswer> {
    const a = await this.request<LoginAnswer>('POST', '/login', { noCsrf: true, quiet: true });
    this.setCsrf(a.csrf_token);
    return a;
  }

  async logout(): Promise<void> {
    try {
      await this.request('POST', '/logout', { quiet: true });
    } finally {
      this.setCsrf(null);
    }
  }

  me(): Promise<Me> {
    return this.get<Me>('/me');
  }
}

/** A path segment (department, user, policy) as the API's targets want it. */
export function seg(value: string | number): string {
  return encodeURIComponent(String(value));
}
