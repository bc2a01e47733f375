import type { Agent, Alert, Department, Job, Replication, StatusReport, StorageReport } from '../api/types';
import { Badge, EmptyRow, ErrorNote, LoadState, Panel, Paths, TableWrap, Time } from '../components/ui';
import { useApp } from '../context';
import { t, units } from '../i18n';
import { ageSeconds, formatBytes, formatDuration } from '../lib/format';
import { useResource } from '../lib/hooks';
import {
  departmentOf,
  jobStateLabel,
  jobTone,
  protectionClass,
  protectionLabel,
  protectionTone,
  severityTone,
  type ProtectionClass,
} from '../lib/status';
import { href } from '../router';
import { addLagSample, replicationLag } from '../lib/lag';

interface DeptRow {
  name: string;
  counts: Record<ProtectionClass, number>;
  unprotected: number;
  failedJobs: number;
  stored: number | null;
  alerts: number;
}

const kWeek = 7 * 86400;

export function OverviewPage() {
  const { api } = useApp();
  const status = useResource(() => api.get<StatusReport>('/status'), [], 15000);
  const jobs = useResource(() => api.get<{ jobs: Job[] }>('/jobs'), [], 15000);
  const replication = useResource(
    async () => {
      const r = await api.get<Replication>('/replication');
      const lag = replicationLag(r);
      if (lag.now !== null) addLagSample(Date.now() / 1000, lag.now, lag.atPass);
      return r;
    },
    [],
    15000,
  );
  const storage = useResource(() => api.get<StorageReport>('/storage'), [], 60000);
  const alerts = useResource(() => api.get<{ alerts: Alert[] }>('/alerts'), [], 15000);
  const departments = useResource(() => api.get<{ departments: Department[] }>('/departments'), [], 60000);
  const agents = useResource(() => api.get<{ agents: Agent[] }>('/agents'), [], 60000);
  // A drill host needs no source of its own: it restores the others'.
  const drillHosts = new Set(
    (agents.data?.agents ?? []).filter((a) => a.drill_host && !a.revoked).map((a) => `${a.department}/${a.host}`),
  );
  const withoutSource = (status.data?.agents_without_source ?? []).filter((e) => !drillHosts.has(e));

  const recentFailures = (jobs.data?.jobs ?? [])
    .filter((j) => (j.state === 'failed' || j.state === 'missed') && (ageSeconds(j.finished || j.created) ?? 0) < kWeek)
    .sort((a, b) => b.job - a.job);

  const rows = new Map<string, DeptRow>();
  const row = (name: string): DeptRow => {
    let r = rows.get(name);
    if (!r) {
      r = {
        name,
        counts: { protected: 0, atRisk: 0, breached: 0, pending: 0, noRpo: 0 },
        unprotected: 0,
        failedJobs: 0,
        stored: null,
        alerts: 0,
      };
      rows.set(name, r);
    }
    return r;
  };
  for (const d of departments.data?.departments ?? []) row(d.name);
  for (const s of status.data?.sources ?? []) row(s.department).counts[protectionClass(s.rpo)]++;
  for (const e of status.data?.unprotected_series ?? []) row(departmentOf(e)).unprotected++;
  for (const e of withoutSource) row(departmentOf(e)).unprotected++;
  for (const j of recentFailures) if (j.department) row(j.department).failedJobs++;
  for (const d of storage.data?.departments ?? []) row(d.department).stored = d.unique_bytes;
  const firing = alerts.data?.alerts ?? [];
  for (const a of firing) if (a.department) row(a.department).alerts++;
  const deptRows = [...rows.values()].sort((a, b) => a.name.localeCompare(b.name));

  const totals = { protected: 0, atRisk: 0, breached: 0, pending: 0, noRpo: 0 } as Record<ProtectionClass, number>;
  for (const r of deptRows) for (const k of Object.keys(totals) as ProtectionClass[]) totals[k] += r.counts[k];
  const unprotected = deptRows.reduce((n, r) => n + r.unprotected, 0);

  const attention = (status.data?.sources ?? []).filter((s) => {
    const c = protectionClass(s.rpo);
    return c === 'atRisk' || c === 'breached' || s.last_failure;
  });

  return (
    <div class="page" data-testid="overview-page">
      <div class="tiles" data-testid="overview-tiles">
        <Tile tone="ok" label={t('status.protected')} value={totals.protected} testid="tile-protected" />
        <Tile tone="warn" label={t('status.atRisk')} value={totals.atRisk} testid="tile-at-risk" />
        <Tile tone="bad" label={t('status.breached')} value={totals.breached} testid="tile-breached" />
        <Tile tone="warn" label={t('status.unprotected')} value={unprotected} testid="tile-unprotected" />
        <Tile tone={firing.length ? 'bad' : 'ok'} label={t('overview.alertsFiring')} value={firing.length} testid="tile-alerts" />
        <Tile
          tone={recentFailures.length ? 'bad' : 'ok'}
          label={t('overview.failedJobs7d')}
          value={recentFailures.length}
          testid="tile-failed-jobs"
        />
      </div>

      <Panel title={t('overview.byDepartment')} testid="overview-departments">
        <LoadState loading={status.loading} error={status.error} hasData={!!status.data} />
        <TableWrap label={t('overview.byDepartment')}>
          <table>
            <thead>
              <tr>
                <th scope="col">{t('common.department')}</th>
                <th scope="col">{t('status.protected')}</th>
                <th scope="col">{t('status.atRisk')}</th>
                <th scope="col">{t('status.breached')}</th>
                <th scope="col">{t('overview.col.pending')}</th>
                <th scope="col">{t('overview.col.noRpo')}</th>
                <th scope="col">{t('status.unprotected')}</th>
                <th scope="col">{t('overview.col.failedJobs')}</th>
                <th scope="col">{t('overview.stored')}</th>
                <th scope="col">{t('overview.alerts')}</th>
              </tr>
            </thead>
            <tbody>
              {deptRows.length === 0 ? <EmptyRow cols={10} text={t('overview.noDepartments')} /> : null}
              {deptRows.map((r) => (
                <tr key={r.name} data-testid={`overview-dept-${r.name}`}>
                  <th scope="row">{r.name}</th>
                  <CountCell n={r.counts.protected} tone="ok" />
                  <CountCell n={r.counts.atRisk} tone="warn" />
                  <CountCell n={r.counts.breached} tone="bad" />
                  <CountCell n={r.counts.pending} tone="info" />
                  <CountCell n={r.counts.noRpo} tone="neutral" />
                  <CountCell n={r.unprotected} tone="warn" />
                  <CountCell n={r.failedJobs} tone="bad" />
                  <td class="num">{r.stored === null ? '—' : formatBytes(r.stored)}</td>
                  <CountCell n={r.alerts} tone="bad" />
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      </Panel>

      <Panel title={t('overview.attention')} testid="overview-attention">
        <TableWrap label={t('overview.attention')}>
          <table>
            <thead>
              <tr>
                <th scope="col">{t('common.state')}</th>
                <th scope="col">{t('common.department')}</th>
                <th scope="col">{t('common.host')}</th>
                <th scope="col">{t('common.paths')}</th>
                <th scope="col">{t('common.policy')}</th>
                <th scope="col">{t('overview.lastGood')}</th>
                <th scope="col">{t('overview.rpo')}</th>
                <th scope="col">{t('overview.lastFailure')}</th>
              </tr>
            </thead>
            <tbody>
              {attention.length === 0 ? <EmptyRow cols={8} text={t('overview.allWell')} /> : null}
              {attention.map((s) => {
                const c = protectionClass(s.rpo);
                return (
                  <tr key={s.source} data-testid={`attention-source-${s.source}`}>
                    <td>
                      <Badge tone={protectionTone[c]}>{t(protectionLabel[c])}</Badge>
                    </td>
                    <td>{s.department}</td>
                    <td>{s.host}</td>
                    <td>
                      <Paths paths={s.paths} />
                    </td>
                    <td>{s.policy}</td>
                    <td>
                      {s.last_good ? (
                        <>
                          <Time value={s.last_good} />
                          <br />
                          <small class="muted">{t('common.ago', { d: formatDuration(ageSeconds(s.last_good), units()) })}</small>
                        </>
                      ) : (
                        <span class="muted">{t('overview.never')}</span>
                      )}
                    </td>
                    <td class="nowrap">{s.rpo_seconds ? formatDuration(s.rpo_seconds, units()) : '—'}</td>
                    <td class="reason">
                      {s.last_failure ? (
                        <>
                          {s.last_failure}
                          <br />
                          <small class="muted">
                            <Time value={s.last_failure_time} />
                          </small>
                        </>
                      ) : (
                        '—'
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </TableWrap>
      </Panel>

      <Panel title={t('overview.failedJobs')} testid="overview-failed-jobs" actions={<a href={href('jobs')}>{t('overview.allJobs')}</a>}>
        <ErrorNote error={jobs.error} />
        <TableWrap label={t('overview.failedJobs')}>
          <table>
            <thead>
              <tr>
                <th scope="col">{t('jobs.job')}</th>
                <th scope="col">{t('common.state')}</th>
                <th scope="col">{t('common.department')}</th>
                <th scope="col">{t('common.host')}</th>
                <th scope="col">{t('common.when')}</th>
                <th scope="col">{t('common.reason')}</th>
              </tr>
            </thead>
            <tbody>
              {recentFailures.length === 0 ? <EmptyRow cols={6} text={t('overview.noFailures')} /> : null}
              {recentFailures.slice(0, 30).map((j) => {
                const label = jobStateLabel(j.state);
                return (
                  <tr key={j.job} data-testid={`overview-failed-job-${j.job}`}>
                    <td class="num">
                      {j.job}
                      {j.kind === 'drill' ? <small class="muted"> {t('jobs.kind.drill')}</small> : null}
                    </td>
                    <td>
                      <Badge tone={jobTone(j.state)}>{label ? t(label) : j.state}</Badge>
                    </td>
                    <td>{j.department}</td>
                    <td>{j.host}</td>
                    <td>
                      <Time value={j.finished || j.created} />
                    </td>
                    <td class="reason">{j.error || '—'}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </TableWrap>
      </Panel>

      <Panel title={t('overview.alerts')} testid="overview-alerts">
        <ErrorNote error={alerts.error} />
        <TableWrap label={t('overview.alerts')}>
          <table>
            <thead>
              <tr>
                <th scope="col">{t('alerts.severity')}</th>
                <th scope="col">{t('alerts.rule')}</th>
                <th scope="col">{t('common.department')}</th>
                <th scope="col">{t('alerts.summary')}</th>
                <th scope="col">{t('alerts.fired')}</th>
              </tr>
            </thead>
            <tbody>
              {firing.length === 0 ? <EmptyRow cols={5} text={t('overview.noAlerts')} /> : null}
              {firing.map((a) => (
                <tr key={a.alert} data-testid={`alert-${a.alert}`}>
                  <td>
                    <Badge tone={severityTone(a.severity)}>
                      {a.severity === 'critical' ? t('alerts.critical') : t('alerts.warning')}
                    </Badge>
                  </td>
                  <td>
                    <code>{a.rule}</code>
                  </td>
                  <td>{a.department || t('alerts.vaultWide')}</td>
                  <td class="reason">{a.summary}</td>
                  <td>
                    <Time value={a.fired} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      </Panel>

      <div class="grid-2">
        <Panel title={t('overview.replication')} testid="overview-replication" actions={<a href={href('dr')}>{t('overview.drDetails')}</a>}>
          <ErrorNote error={replication.error} />
          {replication.data ? <ReplicationSummary r={replication.data} /> : null}
        </Panel>
        <Panel title={t('overview.storage')} testid="overview-storage">
          <ErrorNote error={storage.error} />
          {storage.data ? <StorageSummary s={storage.data} /> : null}
        </Panel>
      </div>

      <Panel title={t('overview.unprotectedTitle')} testid="overview-unprotected">
        <ErrorNote error={status.error} />
        <div class="grid-3">
          <NameList title={t('overview.unprotectedSeries')} items={status.data?.unprotected_series ?? []} help={t('overview.unprotectedSeriesHelp')} />
          <NameList title={t('overview.agentsWithoutSource')} items={withoutSource} help={t('overview.agentsWithoutSourceHelp')} />
          <NameList title={t('overview.agentsUnseen')} items={status.data?.agents_unseen ?? []} help={t('overview.agentsUnseenHelp')} />
        </div>
      </Panel>
    </div>
  );
}

function Tile({ tone, label, value, testid }: { tone: 'ok' | 'warn' | 'bad' | 'neutral'; label: string; value: number; testid: string }) {
  const shown = value === 0 && tone !== 'ok' ? 'zero' : tone;
  return (
    <div class={`tile tile-${shown}`} data-testid={testid}>
      <div class="tile-value">{value}</div>
      <div class="tile-label">{label}</div>
    </div>
  );
}

function CountCell({ n, tone }: { n: number; tone: 'ok' | 'warn' | 'bad' | 'info' | 'neutral' }) {
  return <td class="num">{n > 0 ? <Badge tone={tone}>{n}</Badge> : <span class="muted">0</span>}</td>;
}

function NameList({ title, items, help }: { title: string; items: string[]; help: string }) {
  return (
    <div>
      <h3>
        {title} <span class="count">({items.length})</span>
      </h3>
      <p class="muted small">{help}</p>
      {items.length === 0 ? (
        <p class="muted">{t('common.none')}</p>
      ) : (
        <ul class="plain-list">
          {items.slice(0, 50).map((i) => (
            <li key={i}>
              <code>{i}</code>
            </li>
          ))}
          {items.length > 50 ? <li class="muted">{t('common.andMore', { n: items.length - 50 })}</li> : null}
        </ul>
      )}
    </div>
  );
}

export function ReplicationSummary({ r }: { r: Replication }) {
  const lag = replicationLag(r);
  return (
    <dl class="facts">
      <dt>{t('dr.site')}</dt>
      <dd>{r.site}</dd>
      <dt>{t('dr.role')}</dt>
      <dd data-testid="overview-replication-role">
        {r.replica ? (
          r.promoted ? (
            <Badge tone="warn">{t('dr.rolePromoted')}</Badge>
          ) : (
            <Badge tone="info">{t('dr.roleReplica', { of: r.replica_of })}</Badge>
          )
        ) : (
          <Badge tone="neutral">{t('dr.rolePrimary')}</Badge>
        )}
      </dd>
      {r.replica ? (
        <>
          <dt>{t('dr.lagNow')}</dt>
          <dd>{lag.now === null ? t('dr.noPassYet') : formatDuration(lag.now, units())}</dd>
          <dt>{t('dr.pending')}</dt>
          <dd>{r.last_pass?.pending ?? '—'}</dd>
          <dt>{t('dr.lastPass')}</dt>
          <dd>
            <Time value={r.last_pass?.time_micros ?? null} />
          </dd>
        </>
      ) : (
        <>
          <dt>{t('dr.lagNow')}</dt>
          <dd class="muted">{t('dr.primaryNoLag')}</dd>
        </>
      )}
    </dl>
  );
}

function StorageSummary({ s }: { s: StorageReport }) {
  const total = s.departments.reduce((n, d) => n + d.unique_bytes, 0);
  const packs = s.departments.reduce((n, d) => n + d.packs, 0);
  return (
    <>
      <dl class="facts">
        <dt>{t('storage.total')}</dt>
        <dd>{formatBytes(total)}</dd>
        <dt>{t('storage.packs')}</dt>
        <dd>{packs}</dd>
        <dt>{t('storage.gcLast')}</dt>
        <dd>{s.gc_last ? <RunLine run={s.gc_last} /> : <span class="muted">{t('storage.never')}</span>}</dd>
        <dt>{t('storage.scrubLast')}</dt>
        <dd>{s.scrub_last ? <RunLine run={s.scrub_last} /> : <span class="muted">{t('storage.never')}</span>}</dd>
      </dl>
      <TableWrap label={t('overview.storage')}>
        <table class="compact">
          <thead>
            <tr>
              <th scope="col">{t('common.department')}</th>
              <th scope="col">{t('storage.unique')}</th>
              <th scope="col">{t('storage.packs')}</th>
            </tr>
          </thead>
          <tbody>
            {s.departments.length === 0 ? <EmptyRow cols={3} /> : null}
            {s.departments.map((d) => (
              <tr key={d.department}>
                <td>{d.department}</td>
                <td class="num">{formatBytes(d.unique_bytes)}</td>
                <td class="num">{d.packs}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
    </>
  );
}

function RunLine({ run }: { run: { time?: string; by?: string; [k: string]: unknown } }) {
  return (
    <span>
      <Time value={run.time ?? null} />
      {run.by ? <small class="muted"> · {String(run.by)}</small> : null}
    </span>
  );
}
