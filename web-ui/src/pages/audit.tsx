import { useState } from 'preact/hooks';
import type { AuditEntry, AuditVerification } from '../api/types';
import { Badge, EmptyRow, ErrorNote, LoadState, Panel, TableWrap, Time } from '../components/ui';
import { useApp } from '../context';
import { t } from '../i18n';
import { toCsv } from '../lib/csv';
import { downloadCsv, downloadJson, fileStamp } from '../lib/download';
import { useResource } from '../lib/hooks';

/** A datetime-local value ("2026-12-01T08:00") as microseconds since 1970, in local time. */
export function localToMicros(text: string): number | null {
  if (!text) return null;
  const d = new Date(text);
  return Number.isNaN(d.getTime()) ? null : d.getTime() * 1000;
}

interface Filter {
  actor: string;
  department: string;
  action: string;
  since: string;
  until: string;
  limit: string;
}

const emptyFilter: Filter = { actor: '', department: '', action: '', since: '', until: '', limit: '200' };

export function auditQuery(f: Filter): Record<string, string | number | null> {
  return {
    actor: f.actor.trim(),
    department: f.department.trim(),
    action: f.action.trim(),
    since_micros: localToMicros(f.since),
    until_micros: localToMicros(f.until),
    limit: f.limit.trim() || null,
  };
}

export function AuditPage() {
  const { api } = useApp();
  const verify = useResource(() => api.get<AuditVerification>('/audit/verify'), []);
  const [draft, setDraft] = useState<Filter>(emptyFilter);
  const [filter, setFilter] = useState<Filter>(emptyFilter);
  const entries = useResource(() => api.get<{ entries: AuditEntry[] }>('/audit', auditQuery(filter)), [filter]);
  const list = [...(entries.data?.entries ?? [])].sort((a, b) => b.seq - a.seq);
  const v = verify.data;

  const field = (key: keyof Filter, label: string, type = 'text', placeholder = '') => (
    <div class="field">
      <label for={`audit-${key}`}>{label}</label>
      <input
        id={`audit-${key}`}
        data-testid={`audit-${key}`}
        type={type}
        value={draft[key]}
        placeholder={placeholder}
        onInput={(e) => setDraft({ ...draft, [key]: (e.target as HTMLInputElement).value })}
      />
    </div>
  );

  return (
    <div class="page" data-testid="audit-page">
      <section
        class={`verify-banner ${v ? (v.ok ? 'verify-ok' : 'verify-bad') : 'verify-unknown'}`}
        data-testid="audit-verify-status"
        data-ok={v ? String(v.ok) : undefined}
        aria-live="polite"
      >
        <div class="verify-icon" aria-hidden="true">
          {v ? (v.ok ? '✓' : '✕') : '…'}
        </div>
        <div class="verify-text">
          <h2>
            {v ? (v.ok ? t('audit.verifyOk') : t('audit.verifyBroken')) : verify.error ? t('audit.verifyUnknown') : t('audit.verifying')}
          </h2>
          {v ? (
            <p data-testid="audit-verify-figures">
              {v.checkpoints > 0
                ? t('audit.verifyFigures', { entries: v.entries, checkpoints: v.checkpoints, last: v.last_checkpoint })
                : t('audit.verifyNoCheckpoint', { entries: v.entries })}
            </p>
          ) : null}
          {v && !v.ok && v.first_broken ? (
            <p data-testid="audit-first-broken">
              <strong>{t('audit.firstBroken', { seq: v.first_broken.seq })}</strong> {v.first_broken.reason}
            </p>
          ) : null}
          <ErrorNote error={verify.error} />
        </div>
        <button type="button" class="btn" data-testid="audit-verify-again" disabled={verify.loading} onClick={() => verify.reload()}>
          {t('audit.verifyAgain')}
        </button>
      </section>

      <Panel title={t('audit.searchTitle')} testid="audit-search-panel">
        <form noValidate
          onSubmit={(e) => {
            e.preventDefault();
            setFilter({ ...draft });
          }}
        >
          <div class="row filters">
            {field('actor', t('audit.actor'), 'text', 'user:li.wei')}
            {field('department', t('common.department'))}
            {field('action', t('audit.action'), 'text', 'policy')}
            {field('since', t('audit.since'), 'datetime-local')}
            {field('until', t('audit.until'), 'datetime-local')}
            <div class="field narrow">
              <label for="audit-limit">{t('audit.limit')}</label>
              <input
                id="audit-limit"
                data-testid="audit-limit"
                type="number"
                min="1"
                max="10000"
                value={draft.limit}
                onInput={(e) => setDraft({ ...draft, limit: (e.target as HTMLInputElement).value })}
              />
            </div>
          </div>
          <p class="muted small">{t('audit.searchHelp')}</p>
          <div class="form-actions left">
            <button type="submit" class="btn btn-primary" data-testid="audit-search">
              {t('audit.search')}
            </button>
            <button
              type="button"
              class="btn"
              onClick={() => {
                setDraft(emptyFilter);
                setFilter(emptyFilter);
              }}
            >
              {t('audit.clear')}
            </button>
            <button
              type="button"
              class="btn"
              data-testid="audit-export-csv"
              disabled={!entries.data}
              onClick={() =>
                downloadCsv(
                  `cairn-audit-${fileStamp()}.csv`,
                  toCsv(
                    ['seq', 'time', 'actor', 'address', 'action', 'department', 'object', 'details', 'hash'],
                    list.map((e) => [e.seq, e.time, e.actor, e.address, e.action, e.department, e.object, JSON.stringify(e.details), e.hash]),
                  ),
                )
              }
            >
              {t('compliance.exportCsv')}
            </button>
            <button
              type="button"
              class="btn"
              data-testid="audit-export-json"
              disabled={!entries.data}
              onClick={() => downloadJson(`cairn-audit-${fileStamp()}.json`, { entries: list })}
            >
              {t('compliance.exportJson')}
            </button>
          </div>
        </form>
      </Panel>

      <Panel title={t('audit.entries', { n: list.length })} testid="audit-entries">
        <LoadState loading={entries.loading} error={entries.error} hasData={!!entries.data} />
        <TableWrap label={t('audit.entries', { n: list.length })}>
          <table data-testid="audit-table">
            <thead>
              <tr>
                <th scope="col">{t('audit.seq')}</th>
                <th scope="col">{t('audit.time')}</th>
                <th scope="col">{t('audit.actor')}</th>
                <th scope="col">{t('audit.action')}</th>
                <th scope="col">{t('common.department')}</th>
                <th scope="col">{t('audit.object')}</th>
                <th scope="col">{t('audit.address')}</th>
                <th scope="col">{t('audit.details')}</th>
              </tr>
            </thead>
            <tbody>
              {list.length === 0 && entries.data ? <EmptyRow cols={8} text={t('audit.none')} /> : null}
              {list.map((e) => (
                <tr key={e.seq} data-testid={`audit-row-${e.seq}`}>
                  <td class="num">{e.seq}</td>
                  <td>
                    <Time value={e.time} />
                  </td>
                  <td>
                    <code>{e.actor}</code>
                  </td>
                  <td>
                    <ActionBadge action={e.action} />
                  </td>
                  <td>{e.department || <span class="muted">—</span>}</td>
                  <td class="reason">
                    <code>{e.object || '—'}</code>
                  </td>
                  <td class="nowrap">{e.address}</td>
                  <td class="details-cell">
                    <Details details={e.details} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      </Panel>
    </div>
  );
}

function ActionBadge({ action }: { action: string }) {
  const bad = /refused|fail|missed|forget|revoke|disable|anomaly|broken|demote|promote/.test(action);
  return bad ? <Badge tone="warn">{action}</Badge> : <code>{action}</code>;
}

function Details({ details }: { details: Record<string, unknown> }) {
  const text = JSON.stringify(details ?? {});
  if (text.length <= 80) return <code class="wrap">{text}</code>;
  return (
    <details>
      <summary>
        <code>{text.slice(0, 60)}…</code>
      </summary>
      <pre>{JSON.stringify(details, null, 2)}</pre>
    </details>
  );
}
