import { useLayoutEffect, useRef } from 'preact/hooks';
import { ApiError, seg } from '../api/client';
import type { Snapshot, TreeEntry, TreeListing } from '../api/types';
import type { MessageKey } from '../i18n';
import { t } from '../i18n';
import { useApp } from '../context';
import { formatBytes } from '../lib/format';
import { useResource } from '../lib/hooks';
import { breadcrumbs, joinPath, modeOctal, modeString, normalizePath, parentPath, sortEntries } from '../lib/tree';
import { ErrorNote, Loading, Note, TableWrap, Time } from './ui';

/** A listing that failed, with the directory it was for. */
class BrowseFailure {
  constructor(
    readonly path: string,
    readonly error: unknown,
  ) {}
}

const typeLabel: Record<string, MessageKey> = {
  file: 'browse.type.file',
  dir: 'browse.type.dir',
  symlink: 'browse.type.symlink',
  hardlink: 'browse.type.hardlink',
  image: 'browse.type.image',
  fifo: 'browse.type.fifo',
  chardev: 'browse.type.chardev',
  blockdev: 'browse.type.blockdev',
  socket: 'browse.type.socket',
};

/**
 * The files of a snapshot, one directory at a time, as the vault lists them
 * (GET .../snapshots/{s}/tree): a breadcrumb from the snapshot's root,
 * directories first, and links to the directories the backup took. The
 * directory shown is part of the address (`linkTo(path)`), so the browser's
 * Back button goes up again and a directory can be linked to. Each listing
 * is audited by the vault (snapshot.browse), so nothing here polls.
 */
export function SnapshotBrowser({
  department,
  snapshot,
  path: rawPath,
  linkTo,
}: {
  department: string;
  snapshot: Snapshot;
  /** The directory to show, from the snapshot's root ("/" the root). */
  path: string;
  /** The console address of a directory of this snapshot. */
  linkTo: (path: string) => string;
}) {
  const { api } = useApp();
  const path = normalizePath(rawPath);
  const listing = useResource(
    () =>
      api
        .get<TreeListing>(`/departments/${seg(department)}/snapshots/${seg(snapshot.id)}/tree`, { path })
        .then(
          (answer) => ({ path, answer }),
          (error: unknown) => {
            throw new BrowseFailure(path, error);
          },
        ),
    [department, snapshot.id, path],
  );
  // useResource keeps the last answer and the last error while the next
  // directory loads: show only those of the directory asked for.
  const failure = listing.error instanceof BrowseFailure ? listing.error : null;
  const error = failure ? (failure.path === path ? failure.error : null) : listing.error;
  const current = !error && listing.data?.path === path ? listing.data.answer : null;

  // A directory opened from here takes the focus along to the new listing
  // (the link that was activated is gone); a page opened afresh keeps it.
  // `leftFrom` is the directory a link was activated in, until the next
  // directory's listing (or its error) is drawn.
  const here = useRef<HTMLSpanElement>(null);
  const leftFrom = useRef<string | null>(null);
  useLayoutEffect(() => {
    if (leftFrom.current !== null && leftFrom.current !== path && (current || error)) {
      leftFrom.current = null;
      here.current?.focus();
    }
  }, [path, current, error]);
  const onClickInside = (e: MouseEvent) => {
    if ((e.target as HTMLElement | null)?.closest('a[href]')) leftFrom.current = path;
  };

  const crumbs = breadcrumbs(path);
  const entries = current ? sortEntries(current.entries) : [];
  const roots = snapshot.kind === 'image' ? [] : snapshot.paths.map(normalizePath).filter((p) => p !== path);

  return (
    <div class="browser" data-testid="snapshot-browser" onClick={onClickInside}>
      <nav class="crumbs" aria-label={t('browse.pathLabel')} data-testid="browse-path">
        <ol>
          {crumbs.map((c, i) => {
            const last = i === crumbs.length - 1;
            const label = c.name === '' ? t('browse.root') : c.name;
            return (
              <li key={c.path}>
                {last ? (
                  <span aria-current="location" tabIndex={-1} ref={here} data-testid="browse-here">
                    {label}
                  </span>
                ) : (
                  <a href={linkTo(c.path)} data-testid={i === 0 ? 'browse-root' : `browse-crumb-${c.name}`}>
                    {label}
                  </a>
                )}
              </li>
            );
          })}
        </ol>
      </nav>
      {roots.length ? (
        <p class="small browse-roots">
          <span class="muted">{t('browse.backedUp')}</span>{' '}
          {roots.map((p, i) => (
            <span key={p}>
              {i > 0 ? t('common.listSep') : ''}
              <a href={linkTo(p)} data-testid={`browse-jump-${i}`}>
                <code>{p}</code>
              </a>
            </span>
          ))}
        </p>
      ) : null}

      {!current && !error ? (
        <div data-testid="browse-loading">
          <Loading />
        </div>
      ) : null}
      {error ? <BrowseError error={error} path={path} linkTo={linkTo} /> : null}

      {current ? (
        <>
          <p class="muted small" aria-live="polite" data-testid="browse-summary">
            {t('browse.summary', { path, n: current.entries.length })}
          </p>
          {current.truncated ? (
            <Note kind="warn" testid="browse-truncated">
              {t('browse.truncated', { n: current.entries.length })}
            </Note>
          ) : null}
          <TableWrap label={t('browse.tableLabel', { path })}>
            <table class="compact browse-table" data-testid="browse-entries">
              <thead>
                <tr>
                  <th scope="col">{t('browse.name')}</th>
                  <th scope="col">{t('browse.type')}</th>
                  <th scope="col" class="num">
                    {t('browse.size')}
                  </th>
                  <th scope="col">{t('browse.mode')}</th>
                  <th scope="col">{t('browse.owner')}</th>
                  <th scope="col">{t('browse.modified')}</th>
                </tr>
              </thead>
              <tbody>
                {path !== '/' ? (
                  <tr>
                    <td colSpan={6}>
                      <a href={linkTo(parentPath(path))} data-testid="browse-up">
                        <span aria-hidden="true">↑ </span>
                        {t('browse.up')}
                      </a>
                    </td>
                  </tr>
                ) : null}
                {entries.length === 0 ? (
                  <tr>
                    <td colSpan={6} class="muted empty" data-testid="browse-empty">
                      {t('browse.empty')}
                    </td>
                  </tr>
                ) : null}
                {entries.map((e) => (
                  <EntryRow key={e.name} entry={e} href={e.type === 'dir' ? linkTo(joinPath(path, e.name)) : null} />
                ))}
              </tbody>
            </table>
          </TableWrap>
        </>
      ) : null}
    </div>
  );
}

function EntryRow({ entry: e, href }: { entry: TreeEntry; href: string | null }) {
  const type = typeLabel[e.type];
  return (
    <tr data-testid={`browse-entry-${e.name}`} data-type={e.type}>
      <td class="browse-name">
        {href ? (
          <a href={href} data-testid={`browse-open-${e.name}`}>
            <span class="entry-name">{e.name}</span>
            <span aria-hidden="true">/</span>
          </a>
        ) : (
          <span class="entry-name">{e.name}</span>
        )}
        {e.type === 'symlink' && e.target !== undefined ? (
          <span class="entry-target" data-testid={`browse-target-${e.name}`}>
            {' '}
            <span aria-hidden="true">→</span>
            <span class="visually-hidden">{t('browse.pointsTo')}</span> <code>{e.target}</code>
          </span>
        ) : null}
        {e.type === 'hardlink' && e.link_path !== undefined ? (
          <span class="entry-target" data-testid={`browse-target-${e.name}`}>
            {' '}
            <span class="muted">{t('browse.sameAs')}</span> <code>{normalizePath(e.link_path)}</code>
          </span>
        ) : null}
      </td>
      <td>{type ? t(type) : e.type}</td>
      <td class="num" title={e.size !== undefined ? t('browse.bytes', { n: e.size }) : undefined}>
        {e.size !== undefined ? formatBytes(e.size) : <span class="muted">—</span>}
      </td>
      <td>
        <code title={modeOctal(e.mode)}>{modeString(e.type, e.mode)}</code>
      </td>
      <td>
        {e.user}:{e.group}
      </td>
      <td>
        <Time value={e.mtime} />
      </td>
    </tr>
  );
}

/** 403: the role may not read the department's file names; 404: no such directory (any more). */
function BrowseError({ error, path, linkTo }: { error: unknown; path: string; linkTo: (path: string) => string }) {
  if (error instanceof ApiError && error.forbidden) {
    return (
      <Note kind="error" testid="browse-forbidden">
        {t('browse.forbidden')}
      </Note>
    );
  }
  if (error instanceof ApiError && error.status === 404) {
    return (
      <Note kind="warn" testid="browse-not-found">
        {t('browse.notFound', { path })}{' '}
        {path !== '/' ? <a href={linkTo(parentPath(path))}>{t('browse.up')}</a> : null}
        <span class="small muted"> ({error.message})</span>
      </Note>
    );
  }
  return <ErrorNote error={error} testid="browse-error" />;
}
