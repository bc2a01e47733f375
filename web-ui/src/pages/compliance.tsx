import { useState } from 'preact/hooks';
import type { Compliance, Department, SignedDrillReport } from '../api/types';
import { Badge, EmptyRow, LoadState, Panel, Paths, Select, TableWrap, Time } from '../components/ui';
import { useApp } from '../context';
import { t, units } from '../i18n';
import { downloadCsv, downloadJson, downloadText, fileStamp } from '../lib/download';
import { complianceCsv, drillsCsv, signedReportFile } from '../lib/exports';
import { formatBytes, formatDateTime, formatDuration } from '../lib/format';
import { useResource } from '../lib/hooks';
import { protectionClass, protectionLabel, protectionTone } from '../lib/status';

function dateInput(d: Date): string {
  const p = (n: number) => n.toString().padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

/** A local date ("2026-12-01") as microseconds since 1970 at local midnight; `end` takes the next midnight. */
export function dateToMicros(text: string, end = false): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!m) return null;
  const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + (end ? 1 : 0));
  return d.getTime() * 1000;
}

export function CompliancePage() {
  const { api } = useApp();
  const depts = useResource(() => api.get<{ departments: Department[] }>('/departments'), []);
  const [department, setDepartment] = useState('');
  const [from, setFrom] = useState(() => dateInput(new Date(Date.now() - 30 * 86400000)));
  const [to, setTo] = useState(() => dateInput(new Date()));
  const compliance = useResource(
    () =>
      api.get<Compliance>('/compliance', {
        department,
        from: dateToMicros(from),
        to: dateToMicros(to, true),
      }),
    [department, from, to],
  );
  const drills = useResource(() => api.get<{ drills: SignedDrillReport[] }>('/drills'), []);
  const rows = compliance.data?.sources ?? [];
  const drillList = (drills.data?.drills ?? []).filter((d) => !department || d.report.department === department);
  const names = (depts.data?.departments ?? []).map((d) => d.name);
  const stamp = fileStamp();
  const scope = department || 'all';

  return (
    <div class="page" data-testid="compliance-page">
      <Panel title={t('compliance.title')} testid="compliance-panel">
        <form noValidate class="row filters" onSubmit={(e) => e.preventDefault()}>
          <Select
            id="compliance-department"
            testid="compliance-department"
            label={t('common.department')}
            value={department}
            allLabel={t('common.all')}
            options={names.map((n) => ({ value: n, label: n }))}
            onChange={setDepartment}
          />
          <div class="field">
            <label for="compliance-from">{t('compliance.from')}</label>
            <input id="compliance-from" data-testid="compliance-from" type="date" value={from} onChange={(e) => setFrom((e.target as HTMLInputElement).value)} />
          </div>
          <div class="field">
            <label for="compliance-to">{t('compliance.to')}</label>
            <input id="compliance-to" data-testid="compliance-to" type="date" value={to} onChange={(e) => setTo((e.target as HTMLInputElement).value)} />
          </div>
          <div class="field shrink">
            <span class="label" aria-hidden="true">
              &nbsp;
            </span>
            <div class="btn-group">
              <button
                type="button"
                class="btn"
                data-testid="compliance-export-csv"
                disabled={!compliance.data}
                onClick={() => downloadCsv(`cairn-compliance-${scope}-${stamp}.csv`, complianceCsv(rows))}
              >
                {t('compliance.exportCsv')}
              </button>
              <button
                type="button"
                class="btn"
                data-testid="compliance-export-json"
                disabled={!compliance.data}
                onClick={() => downloadJson(`cairn-compliance-${scope}-${stamp}.json`, compliance.data)}
              >
                {t('compliance.exportJson')}
              </button>
            </div>
          </div>
        </form>
        <p class="muted small">
          {compliance.data
            ? t('compliance.window', {
                from: formatDateTime(compliance.data.from),
                to: formatDateTime(compliance.data.to),
              })
            : ''}
        </p>
        <LoadState loading={compliance.loading} error={compliance.error} hasData={!!compliance.data} />
        <TableWrap label={t('compliance.title')}>
          <table data-testid="compliance-table">
            <thead>
              <tr>
                <th scope="col">{t('compliance.compliant')}</th>
                <th scope="col">{t('common.department')}</th>
                <th scope="col">{t('common.host')}</th>
                <th scope="col">{t('common.paths')}</th>
                <th scope="col">{t('common.policy')}</th>
                <th scope="col">{t('compliance.rpo')}</th>
                <th scope="col">{t('compliance.rto')}</th>
                <th scope="col">{t('compliance.drillFresh')}</th>
                <th scope="col">{t('compliance.backups')}</th>
                <th scope="col">{t('compliance.damaged')}</th>
                <th scope="col">{t('compliance.stored')}</th>
              </tr>
            </thead>
            <tbody>
              {rows.length === 0 && compliance.data ? <EmptyRow cols={11} text={t('compliance.none')} /> : null}
              {rows.map((r) => {
                const c = protectionClass(r.rpo_state);
                return (
                  <tr key={r.source} data-testid={`compliance-row-${r.source}`}>
                    <td>
                      {r.compliant ? (
                        <Badge tone="ok">{t('compliance.yes')}</Badge>
                      ) : (
                        <Badge tone="bad">{t('compliance.no')}</Badge>
                      )}
                    </td>
                    <td>{r.department}</td>
                    <td>{r.host}</td>
                    <td>
                      <Paths paths={r.paths} />
                    </td>
                    <td>{r.policy}</td>
                    <td>
                      <Badge tone={protectionTone[c]}>{t(protectionLabel[c])}</Badge>
                      <div class="small muted nowrap">
                        {t('compliance.achievedOf', {
                          achieved: r.rpo_achieved_seconds === null ? '—' : formatDuration(r.rpo_achieved_seconds, units()),
                          objective: r.rpo_seconds ? formatDuration(r.rpo_seconds, units()) : '—',
                        })}
                      </div>
                    </td>
                    <td>
                      {!r.rto_seconds ? (
                        <span class="muted">{t('compliance.noRto')}</span>
                      ) : !r.last_drill ? (
                        <Badge tone="warn">{t('compliance.noDrill')}</Badge>
                      ) : r.last_drill.ok && r.last_drill.rto_met !== false ? (
                        <Badge tone="ok">{t('compliance.rtoMet')}</Badge>
                      ) : (
                        <Badge tone="bad">{t('compliance.rtoMissed')}</Badge>
                      )}
                      {r.last_drill ? (
                        <div class="small muted nowrap">
                          {t('compliance.achievedOf', {
                            achieved: formatDuration(r.last_drill.total_seconds, units()),
                            objective: r.rto_seconds ? formatDuration(r.rto_seconds, units()) : '—',
                          })}
                        </div>
                      ) : null}
                    </td>
                    <td class="reason">
                      {!r.drill_every_seconds ? (
                        <span class="muted">{t('compliance.noDrillSchedule')}</span>
                      ) : r.drill_fresh ? (
                        <Badge tone="ok">{t('compliance.fresh')}</Badge>
                      ) : (
                        <Badge tone="bad">{t('compliance.stale')}</Badge>
                      )}
                      {r.drill_every_seconds ? (
                        <div class="small muted nowrap">{t('compliance.every', { d: formatDuration(r.drill_every_seconds, units()) })}</div>
                      ) : null}
                      {/* A miss that a later drill made good is history, not an alarm. */}
                      {r.scheduled_drills?.last_missed_reason && !r.drill_fresh ? (
                        <div class="small text-bad">{r.scheduled_drills.last_missed_reason}</div>
                      ) : null}
                      {r.scheduled_drills?.missed && r.drill_fresh ? (
                        <div class="small muted">{t('compliance.drillsMissedBefore', { n: r.scheduled_drills.missed })}</div>
                      ) : null}
                    </td>
                    <td class="nowrap">
                      {r.backup_success_percent === null || r.backup_success_percent === undefined
                        ? '—'
                        : `${Math.round(r.backup_success_percent * 10) / 10}%`}
                      <div class="small muted">
                        {t('compliance.backupCounts', {
                          done: r.backups?.done ?? 0,
                          failed: r.backups?.failed ?? 0,
                          missed: r.backups?.missed ?? 0,
                        })}
                      </div>
                    </td>
                    <td class="num">{r.damaged_snapshots ? <Badge tone="bad">{r.damaged_snapshots}</Badge> : '0'}</td>
                    <td class="num">{formatBytes(r.department_stored_bytes)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </TableWrap>
      </Panel>

      <Panel
        title={t('drills.title')}
        testid="drills-panel"
        actions={
          <div class="btn-group">
            <button
              type="button"
              class="btn"
              data-testid="drills-export-csv"
              disabled={!drills.data}
              onClick={() => downloadCsv(`cairn-drills-${scope}-${stamp}.csv`, drillsCsv(drillList))}
            >
              {t('compliance.exportCsv')}
            </button>
            <button
              type="button"
              class="btn"
              data-testid="drills-export-json"
              disabled={!drills.data}
              onClick={() => downloadJson(`cairn-drills-${scope}-${stamp}.json`, { drills: drillList })}
            >
              {t('compliance.exportJson')}
            </button>
          </div>
        }
      >
        <p class="muted small">{t('drills.intro')}</p>
        <LoadState loading={drills.loading} error={drills.error} hasData={!!drills.data} />
        <TableWrap label={t('drills.title')}>
          <table data-testid="drills-table">
            <thead>
              <tr>
                <th scope="col">{t('drills.drill')}</th>
                <th scope="col">{t('drills.result')}</th>
                <th scope="col">{t('drills.finished')}</th>
                <th scope="col">{t('common.department')}</th>
                <th scope="col">{t('drills.snapshot')}</th>
                <th scope="col">{t('drills.drillHost')}</th>
                <th scope="col">{t('drills.readSite')}</th>
                <th scope="col">{t('drills.totalVsRto')}</th>
                <th scope="col">{t('drills.restored')}</th>
                <th scope="col">{t('drills.report')}</th>
              </tr>
            </thead>
            <tbody>
              {drillList.length === 0 && drills.data ? <EmptyRow cols={10} text={t('drills.none')} /> : null}
              {drillList.map((d) => {
                const r = d.report;
                const total = r.millis ? r.millis.total / 1000 : null;
                const share = total !== null && r.rto_seconds ? Math.min(100, (total / r.rto_seconds) * 100) : null;
                return (
                  <tr key={r.drill} data-testid={`drill-row-${r.drill}`}>
                    <td class="num">
                      {r.drill}
                      {r.scheduled ? <div class="small muted">{t('drills.scheduled')}</div> : null}
                    </td>
                    <td>
                      {r.ok ? <Badge tone="ok">{t('drills.passed')}</Badge> : <Badge tone="bad">{t('drills.failed')}</Badge>}
                      {r.failure ? <div class="small text-bad reason">{r.failure}</div> : null}
                    </td>
                    <td>
                      <Time value={r.finished} />
                    </td>
                    <td>{r.department}</td>
                    <td>
                      <code>{r.snapshot.slice(0, 8)}</code>
                      <div class="small muted">{r.snapshot_host}</div>
                    </td>
                    <td>{r.drill_host}</td>
                    <td>
                      {r.read_site === 'dr' ? (
                        <Badge tone="info">{t('drills.readDr')}</Badge>
                      ) : (
                        <span>{t('drills.readHere', { site: r.read_site })}</span>
                      )}
                    </td>
                    <td class="nowrap">
                      <div>
                        {t('compliance.achievedOf', {
                          achieved: total === null ? '—' : formatDuration(total, units()),
                          objective: r.rto_seconds ? formatDuration(r.rto_seconds, units()) : '—',
                        })}
                      </div>
                      {share !== null ? (
                        <div class="rto-bar" aria-hidden="true">
                          <div class={`rto-fill ${r.rto_met === false ? 'over' : ''}`} style={{ width: `${share}%` }} />
                        </div>
                      ) : null}
                      {r.rto_met === null || r.rto_met === undefined ? (
                        <span class="small muted">{t('compliance.noRto')}</span>
                      ) : r.rto_met ? (
                        <Badge tone="ok">{t('compliance.rtoMet')}</Badge>
                      ) : (
                        <Badge tone="bad">{t('compliance.rtoMissed')}</Badge>
                      )}
                    </td>
                    <td class="nowrap">
                      {t('drills.filesBytes', { files: r.files, bytes: formatBytes(r.bytes) })}
                    </td>
                    <td>
                      <button
                        type="button"
                        class="btn btn-small"
                        data-testid={`drill-download-${r.drill}`}
                        onClick={() =>
                          downloadText(
                            `cairn-drill-${r.department}-${r.drill}.json`,
                            signedReportFile(d),
                            'application/json',
                          )
                        }
                      >
                        {t('drills.download')}
                      </button>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </TableWrap>
        <p class="muted small">{t('drills.verifyNote')}</p>
      </Panel>
    </div>
  );
}
