import { describe, expect, it } from 'vitest';
import { breadcrumbs, joinPath, modeOctal, modeString, normalizePath, parentPath, sortEntries, splitPath } from './tree';

describe('snapshot paths', () => {
  it.each([
    ['', '/'],
    ['/', '/'],
    ['srv', '/srv'],
    ['/srv/db/', '/srv/db'],
    ['//srv///db', '/srv/db'],
    ['/srv/./db/..', '/srv/db'],
  ])('normalizes %j to %j', (input, out) => expect(normalizePath(input)).toBe(out));

  it('splits a path into names', () => {
    expect(splitPath('/')).toEqual([]);
    expect(splitPath('/tmp/cairn-e2e.x/src')).toEqual(['tmp', 'cairn-e2e.x', 'src']);
  });

  it('joins a name to its directory, at the root and below', () => {
    expect(joinPath('/', 'srv')).toBe('/srv');
    expect(joinPath('/srv', 'db')).toBe('/srv/db');
    expect(joinPath('/srv/', 'db')).toBe('/srv/db');
    expect(joinPath('/', 'a name with spaces')).toBe('/a name with spaces');
  });

  it('goes up one directory, and stays at the root', () => {
    expect(parentPath('/srv/db')).toBe('/srv');
    expect(parentPath('/srv')).toBe('/');
    expect(parentPath('/')).toBe('/');
  });

  it('makes a breadcrumb from the root down', () => {
    expect(breadcrumbs('/')).toEqual([{ name: '', path: '/' }]);
    expect(breadcrumbs('/srv/db/')).toEqual([
      { name: '', path: '/' },
      { name: 'srv', path: '/srv' },
      { name: 'db', path: '/srv/db' },
    ]);
  });
});

describe('sortEntries', () => {
  it('puts directories first, then the rest by name in code-point order', () => {
    const entries = [
      { name: 'link', type: 'symlink' },
      { name: 'sub', type: 'dir' },
      { name: 'big.bin', type: 'file' },
      { name: 'Zeta', type: 'dir' },
      { name: 'empty', type: 'dir' },
      { name: 'Alpha', type: 'file' },
      { name: 'hard', type: 'hardlink' },
    ];
    expect(sortEntries(entries).map((e) => e.name)).toEqual([
      'Zeta', 'empty', 'sub', 'Alpha', 'big.bin', 'hard', 'link',
    ]);
  });

  it('leaves its input as it was', () => {
    const entries = [
      { name: 'b', type: 'file' },
      { name: 'a', type: 'dir' },
    ];
    sortEntries(entries);
    expect(entries.map((e) => e.name)).toEqual(['b', 'a']);
  });
});

describe('modeString', () => {
  it.each([
    ['dir', 0o755, 'drwxr-xr-x'],
    ['file', 0o644, '-rw-r--r--'],
    ['file', 0o600, '-rw-------'],
    ['symlink', 0o777, 'lrwxrwxrwx'],
    ['hardlink', 0o640, '-rw-r-----'],
    ['image', 0o660, '-rw-rw----'],
    ['fifo', 0o644, 'prw-r--r--'],
    ['chardev', 0o666, 'crw-rw-rw-'],
    ['blockdev', 0o660, 'brw-rw----'],
    ['socket', 0o755, 'srwxr-xr-x'],
    ['file', 0o4755, '-rwsr-xr-x'],
    ['file', 0o4644, '-rwSr--r--'],
    ['dir', 0o2775, 'drwxrwsr-x'],
    ['dir', 0o2765, 'drwxrwSr-x'],
    ['dir', 0o1777, 'drwxrwxrwt'],
    ['dir', 0o1776, 'drwxrwxrwT'],
    ['file', 0, '----------'],
    ['something-new', 0o644, '-rw-r--r--'],
  ])('%s %o → %s', (type, mode, text) => expect(modeString(type, mode)).toBe(text));

  it('ignores bits above the permissions', () => {
    expect(modeString('file', 0o100644)).toBe('-rw-r--r--');
  });

  it('writes octal for the tooltip', () => {
    expect(modeOctal(0o755)).toBe('0755');
    expect(modeOctal(0o4755)).toBe('4755');
    expect(modeOctal(0)).toBe('0000');
  });
});
