// Hash routes: #/page[/arg...]. The vault serves one index.html at `/`.
import { useEffect, useState } from 'preact/hooks';
import { pages, type Page } from './auth/roles';

export interface Route {
  page: Page;
  args: string[];
}

export function parseHash(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').filter((p) => p !== '').map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  const page = (pages as readonly string[]).includes(parts[0] ?? '') ? (parts[0] as Page) : 'overview';
  return { page, args: page === parts[0] ? parts.slice(1) : [] };
}

export function href(page: Page, ...args: (string | number)[]): string {
  return '#/' + [page, ...args.map((a) => encodeURIComponent(String(a)))].join('/');
}

export function navigate(page: Page, ...args: (string | number)[]): void {
  location.hash = href(page, ...args);
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseHash(location.hash));
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}
