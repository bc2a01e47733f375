// A snapshot's tree as the file browser shows it: paths from the snapshot's
// root ("/", "/srv/db"), the breadcrumb above a listing, the order of the
// entries and the `ls -l` mode string. Pure, for the tests.

import type { TreeEntry } from '../api/types';

/**
 * A path as the browser keeps it: one leading slash, no empty, "." or ".."
 * segment, no trailing slash; the root is "/". "srv//db/" → "/srv/db".
 * ".." and "." are dropped, not resolved: entry names never are either, and a
 * snapshot path only ever goes down from the root.
 */
export function normalizePath(path: string): string {
  return '/' + splitPath(path).join('/');
}

/** The names along a path, root first: "/srv/db" → ["srv", "db"]; "/" → []. */
export function splitPath(path: string): string[] {
  return path.split('/').filter((p) => p !== '' && p !== '.' && p !== '..');
}

/** The path of `name` inside directory `dir`: ("/", "srv") → "/srv"; ("/srv", "db") → "/srv/db". */
export function joinPath(dir: string, name: string): string {
  const base = normalizePath(dir);
  return base === '/' ? `/${name}` : `${base}/${name}`;
}

/** The directory above `path`; the root's is the root. */
export function parentPath(path: string): string {
  const parts = splitPath(path);
  return '/' + parts.slice(0, -1).join('/');
}

export interface Crumb {
  /** The segment's name; "" for the root. */
  name: string;
  /** The path up to and including it. */
  path: string;
}

/** The breadcrumb of a path: the root, then each directory down to it. */
export function breadcrumbs(path: string): Crumb[] {
  const out: Crumb[] = [{ name: '', path: '/' }];
  let at = '';
  for (const name of splitPath(path)) {
    at += `/${name}`;
    out.push({ name, path: at });
  }
  return out;
}

/**
 * The listing's order: directories first, then everything else, each by
 * name in code-point order (the order the vault keeps, so "B" before "a";
 * a locale's order would differ between the languages of the console).
 * Returns a new array.
 */
export function sortEntries<T extends Pick<TreeEntry, 'name' | 'type'>>(entries: readonly T[]): T[] {
  const rank = (e: T) => (e.type === 'dir' ? 0 : 1);
  return [...entries].sort((a, b) => rank(a) - rank(b) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

const typeChar: Record<string, string> = {
  dir: 'd',
  symlink: 'l',
  fifo: 'p',
  chardev: 'c',
  blockdev: 'b',
  socket: 's',
  // file, hardlink (another name of a regular file), image: '-'
};

/**
 * The mode as `ls -l` writes it: ("dir", 0o755) → "drwxr-xr-x",
 * ("file", 0o4755) → "-rwsr-xr-x", ("dir", 0o1777) → "drwxrwxrwt";
 * setuid, setgid and sticky without the execute bit are S and T.
 */
export function modeString(type: string, mode: number): string {
  const m = Number.isFinite(mode) ? mode & 0o7777 : 0;
  const triple = (shift: number, special: boolean, specialChar: string) => {
    const r = m & (0o4 << shift) ? 'r' : '-';
    const w = m & (0o2 << shift) ? 'w' : '-';
    const exec = (m & (0o1 << shift)) !== 0;
    const x = special ? (exec ? specialChar : specialChar.toUpperCase()) : exec ? 'x' : '-';
    return r + w + x;
  };
  return (
    (typeChar[type] ?? '-') +
    triple(6, (m & 0o4000) !== 0, 's') +
    triple(3, (m & 0o2000) !== 0, 's') +
    triple(0, (m & 0o1000) !== 0, 't')
  );
}

/** The mode in octal, for the tooltip: 0o755 → "0755". */
export function modeOctal(mode: number): string {
  return (Number.isFinite(mode) ? mode & 0o7777 : 0).toString(8).padStart(4, '0');
}
