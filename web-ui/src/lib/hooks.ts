import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

export interface Resource<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => Promise<void>;
}

/**
 * Loads `load()` when `deps` change, and again every `pollMs` when given.
 * Polls never overlap; an answer that arrives after newer deps is dropped;
 * an error keeps the last good data (a page stays readable while the vault
 * is briefly away) and is reported beside it.
 */
export function useResource<T>(load: () => Promise<T>, deps: unknown[], pollMs?: number): Resource<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const generation = useRef(0);
  const inflight = useRef(false);
  const mounted = useRef(true);

  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);

  // eslint-disable-next-line react-hooks/exhaustive-deps
  const run = useCallback(async (gen: number) => {
    if (inflight.current && gen === generation.current) return;
    inflight.current = true;
    try {
      const value = await load();
      if (mounted.current && gen === generation.current) {
        setData(value);
        setError(null);
      }
    } catch (e) {
      if (mounted.current && gen === generation.current) setError(e);
    } finally {
      inflight.current = false;
      if (mounted.current && gen === generation.current) setLoading(false);
    }
  }, deps);

  useEffect(() => {
    const gen = ++generation.current;
    inflight.current = false;
    setLoading(true);
    void run(gen);
    if (!pollMs) return undefined;
    const id = setInterval(() => {
      if (typeof document !== 'undefined' && document.hidden) return;
      void run(gen);
    }, pollMs);
    return () => clearInterval(id);
  }, [run, pollMs]);

  const reload = useCallback(() => run(generation.current), [run]);
  return { data, error, loading, reload };
}

/** A write in flight, with its error kept for the form that started it. */
export function useAction<A extends unknown[], R>(
  fn: (...args: A) => Promise<R>,
): { run: (...args: A) => Promise<R | undefined>; busy: boolean; error: unknown; clear: () => void } {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const run = async (...args: A): Promise<R | undefined> => {
    setBusy(true);
    setError(null);
    try {
      return await fn(...args);
    } catch (e) {
      setError(e);
      return undefined;
    } finally {
      setBusy(false);
    }
  };
  return { run, busy, error, clear: () => setError(null) };
}
