import { describe, expect, it, vi } from 'vitest';
import { Api, ApiError, withQuery } from './client';

interface Call {
  url: string;
  init: RequestInit;
}

/** A fetch that answers from a queue and records what it was asked. */
function stub(...answers: (Response | Error)[]) {
  const calls: Call[] = [];
  const fetch = vi.fn(async (url: RequestInfo | URL, init?: RequestInit) => {
    calls.push({ url: String(url), init: init ?? {} });
    const next = answers.shift();
    if (!next) throw new Error('no answer queued');
    if (next instanceof Error) throw next;
    return next;
  });
  return { fetch: fetch as unknown as typeof globalThis.fetch, calls };
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
}

function memoryStorage() {
  const m = new Map<string, string>();
  return {
    getItem: (k: string) => m.get(k) ?? null,
    setItem: (k: string, v: string) => void m.set(k, v),
    removeItem: (k: string) => void m.delete(k),
    map: m,
  };
}

/** The ApiError a call failed with (the test fails when it did not fail). */
async function failure(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error('the call did not fail');
}

const header = (c: Call, name: string) => (c.init.headers as Record<string, string>)[name];

const loginAnswer = { user: 'li.wei', role: 'operator', departments: ['finance'], csrf_token: 'c0ffee' };

describe('Api', () => {
  it('logs in with user and password and keeps the CSRF token', async () => {
    const s = stub(json(200, loginAnswer));
    const storage = memoryStorage();
    const api = new Api({ fetch: s.fetch, storage });
    const a = await api.login('li.wei', 'secret-secret');
    expect(a.role).toBe('operator');
    expect(s.calls[0].url).toBe('/api/v1/login');
    expect(s.calls[0].init.method).toBe('POST');
    expect(JSON.parse(String(s.calls[0].init.body))).toEqual({ user: 'li.wei', password: 'secret-secret' });
    expect(header(s.calls[0], 'X-CSRF-Token')).toBeUndefined();
    expect(s.calls[0].init.credentials).toBe('same-origin');
    expect(api.hasSession).toBe(true);
    expect(storage.map.get('cairn.csrf')).toBe('c0ffee');
  });

  it('logs in with the client certificate by a POST with no body', async () => {
    const s = stub(json(200, loginAnswer));
    const api = new Api({ fetch: s.fetch, storage: null });
    await api.loginWithCertificate();
    expect(s.calls[0].init.method).toBe('POST');
    expect(s.calls[0].init.body).toBeUndefined();
    expect(header(s.calls[0], 'Content-Type')).toBeUndefined();
  });

  it('sends X-CSRF-Token on every write and never on reads', async () => {
    const s = stub(
      json(200, loginAnswer),
      json(200, { jobs: [] }),
      json(201, { job: 1 }),
      json(200, { name: 'p' }),
      json(200, { removed: 4 }),
    );
    const api = new Api({ fetch: s.fetch, storage: null });
    await api.login('li.wei', 'secret-secret');
    await api.get('/jobs');
    await api.post('/jobs', { agent: 'db-01' });
    await api.patch('/policies/p', { keep_daily: 30 });
    await api.del('/sources/4');
    expect(header(s.calls[1], 'X-CSRF-Token')).toBeUndefined();
    for (const c of s.calls.slice(2)) {
      expect(header(c, 'X-CSRF-Token'), c.init.method).toBe('c0ffee');
    }
    expect(header(s.calls[2], 'Content-Type')).toBe('application/json');
    expect(s.calls[3].init.method).toBe('PATCH');
    expect(s.calls[4].init.method).toBe('DELETE');
  });

  it('picks the CSRF token up again after a reload', async () => {
    const storage = memoryStorage();
    storage.setItem('cairn.csrf', 'kept');
    const s = stub(json(200, {}));
    const api = new Api({ fetch: s.fetch, storage });
    expect(api.hasSession).toBe(true);
    await api.post('/logout');
    expect(header(s.calls[0], 'X-CSRF-Token')).toBe('kept');
  });

  it('ends the session on a 401 from any call and tells the console', async () => {
    const storage = memoryStorage();
    storage.setItem('cairn.csrf', 'old');
    const s = stub(json(401, { error: { code: 'unauthenticated', message: 'the session expired; log in again' } }));
    const api = new Api({ fetch: s.fetch, storage });
    const ended = vi.fn();
    api.onSessionEnded(ended);
    const err = await failure(api.get('/status'));
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(401);
    expect(ended).toHaveBeenCalledWith('expired');
    expect(api.hasSession).toBe(false);
    expect(storage.map.has('cairn.csrf')).toBe(false);
  });

  it('does not call a failed login the end of a session', async () => {
    const s = stub(json(401, { error: { code: 'unauthenticated', message: 'wrong user or password' } }));
    const api = new Api({ fetch: s.fetch, storage: null });
    const ended = vi.fn();
    api.onSessionEnded(ended);
    const err = await failure(api.login('x', 'y'));
    expect(err.message).toBe('wrong user or password');
    expect(ended).not.toHaveBeenCalled();
  });

  it('treats a refused CSRF token as the end of the session', async () => {
    const s = stub(json(403, { error: { code: 'csrf', message: 'a write with a session cookie needs X-CSRF-Token' } }));
    const api = new Api({ fetch: s.fetch, storage: null });
    const ended = vi.fn();
    api.onSessionEnded(ended);
    const err = await failure(api.post('/jobs', {}));
    expect(err.forbidden).toBe(false);
    expect(ended).toHaveBeenCalledWith('csrf');
  });

  it('turns the vault\'s error JSON into an error with its code and message', async () => {
    const s = stub(
      json(400, { error: { code: 'invalid_argument', message: 'weaker than template level3: keep-daily 7; the template needs at least 14' } }),
      json(403, { error: { code: 'forbidden', message: 'role auditor may not start jobs' } }),
    );
    const api = new Api({ fetch: s.fetch, storage: null });
    const ended = vi.fn();
    api.onSessionEnded(ended);
    const bad = await failure(api.post('/policies', { name: 'x' }));
    expect(bad).toBeInstanceOf(ApiError);
    expect(bad.status).toBe(400);
    expect(bad.code).toBe('invalid_argument');
    expect(bad.message).toContain('keep-daily 7');
    const denied = await failure(api.post('/jobs', {}));
    expect(denied.forbidden).toBe(true);
    expect(denied.message).toBe('role auditor may not start jobs');
    expect(ended).not.toHaveBeenCalled();
  });

  it('makes a message of an answer that is not the error JSON', async () => {
    const s = stub(new Response('<html>bad gateway</html>', { status: 502, statusText: 'Bad Gateway' }));
    const api = new Api({ fetch: s.fetch, storage: null });
    const err = await failure(api.get('/status'));
    expect(err.status).toBe(502);
    expect(err.code).toBe('http_502');
    expect(err.message).toBe('502 Bad Gateway');
  });

  it('reports a network failure as an error, not a crash', async () => {
    const s = stub(new TypeError('Failed to fetch'));
    const api = new Api({ fetch: s.fetch, storage: null });
    const err = await failure(api.get('/status'));
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(0);
    expect(err.code).toBe('network');
  });

  it('clears the session at logout even when the vault has forgotten it', async () => {
    const storage = memoryStorage();
    storage.setItem('cairn.csrf', 'old');
    const s = stub(json(401, { error: { code: 'unauthenticated', message: 'no session' } }));
    const api = new Api({ fetch: s.fetch, storage });
    const ended = vi.fn();
    api.onSessionEnded(ended);
    await api.logout().catch(() => undefined);
    expect(api.hasSession).toBe(false);
    expect(ended).not.toHaveBeenCalled();
  });

  it('encodes query parameters and leaves out empty ones', async () => {
    expect(withQuery('/audit', { actor: 'user:li wei', department: '', limit: 50, since_micros: null })).toBe(
      '/audit?actor=user%3Ali%20wei&limit=50',
    );
    const s = stub(json(200, { entries: [] }));
    const api = new Api({ fetch: s.fetch, storage: null });
    await api.get('/audit', { action: 'user' });
    expect(s.calls[0].url).toBe('/api/v1/audit?action=user');
  });
});
