import { useState } from 'preact/hooks';
import type { Agent, Job, Source } from '../api/types';
import { Badge, EmptyRow, ErrorNote, LoadState, Note, Panel, Paths, Select, TableWrap, Time } from '../components/ui';
import { useApp, useCan } from '../context';
import { t, units } from '../i18n';
import { ageSeconds, formatBytes, formatDuration, formatEta, formatRate, percentDone } from '../lib/format';
import { useAction, useResource } from '../lib/hooks';
import { filterJobs, isRunning, jobKindKey, jobReads, jobSeconds } from '../lib/jobs';
import { jobStateLabel, jobTone } from '../lib/status';
import { href } from '../router';

const kHistoryRows = 200;

export function JobsPage() {
  const { api } = useApp();
  const mayStart = useCan('job.start');
  const jobs = useResource(() => api.get<{ jobs: Job[] }>('/jobs'), [], 2000);
  const [state, setState] = useState('');
  const [department, setDepartment] = useState('');
  const [kind, setKind] = useState('');

  const all = [...(jobs.data?.jobs ?? [])].sort((a, b) => b.job - a.job);
  const running = all.filter(isRunning);
  const history = filterJobs(all.filter((j) => !isRunning(j)), { state, department, kind });
  const departments = [...new Set(all.map((j) => j.department).filter((d) => d))].sort();

  return (
    <div class="page" data-testid="jobs-page">
      {mayStart ? <BackupNow onStarted={() => jobs.reload()} /> : null}

      <Panel title={t('jobs.running', { n: running.length })} testid="jobs-running">
        <LoadState loading={jobs.loading} error={jobs.error} hasData={!!jobs.data} />
        <p class="muted small">{t('jobs.pollNote')}</p>
        {running.length === 0 && jobs.data ? <p class="muted">{t('jobs.noneRunning')}</p> : null}
        <div class="running-list">
          {running.map((j) => (
            <RunningJob key={j.job} job={j} />
          ))}
        </div>
      </Panel>

      <Panel title={t('jobs.history')} testid="jobs-history">
        <div class="row filters">
          <Select
            id="job-filter-state"
            testid="job-filter-state"
            label={t('common.state')}
            value={state}
            allLabel={t('common.all')}
            options={(['done', 'failed', 'missed'] as const).map((s) => ({ value: s, label: t(jobStateLabel(s)!) }))}
            onChange={setState}
          />
          <Select
            id="job-filter-department"
            testid="job-filter-department"
            label={t('common.department')}
            value={department}
            allLabel={t('common.all')}
            options={departments.map((d) => ({ value: d, label: d }))}
            onChange={setDepartment}
          />
          <Select
            id="job-filter-kind"
            testid="job-filter-kind"
            label={t('jobs.kind')}
            value={kind}
            allLabel={t('common.all')}
            options={[
              { value: 'backup', label: t('jobs.kind.backup') },
              { value: 'drill', label: t('jobs.kind.drill') },
              { value: 'restore', label: t('jobs.kind.restore') },
            ]}
            onChange={setKind}
          />
        </div>
        <TableWrap label={t('jobs.history')}>
          <table>
            <thead>
              <tr>
                <th scope="col">{t('jobs.job')}</th>
                <th scope="col">{t('common.state')}</th>
                <th scope="col">{t('common.department')}</th>
                <th scope="col">{t('common.host')}</th>
                <th scope="col">{t('jobs.kind')}</th>
                <th scope="col">{t('jobs.result')}</th>
                <th scope="col">{t('jobs.finished')}</th>
                <th scope="col">{t('jobs.took')}</th>
                <th scope="col">{t('jobs.whatCol')}</th>
                <th scope="col">{t('jobs.created')}</th>
              </tr>
            </thead>
            <tbody>
              {history.length === 0 && jobs.data ? <EmptyRow cols={10} text={t('jobs.noneMatch')} /> : null}
              {history.slice(0, kHistoryRows).map((j) => {
                const label = jobStateLabel(j.state);
                const secs = jobSeconds(j);
                return (
                  <tr key={j.job} data-testid={`job-row-${j.job}`}>
                    <td class="num">{j.job}</td>
                    <td>
                      <Badge tone={jobTone(j.state)}>{label ? t(label) : j.state}</Badge>
                    </td>
                    <td>{j.department}</td>
                    <td>{j.host}</td>
                    <td>
                      {t(jobKindKey(j))}
                      {j.source ? <div class="small muted nowrap">{t('jobs.ofSource', { id: j.source })}</div> : null}
                    </td>
                    <td class="reason">
                      {j.error ? <span class="text-bad">{j.error}</span> : null}
                      {j.stats ? (
                        <span>
                          {t('jobs.statsLine', {
                            files: j.stats.files,
                            bytes: formatBytes(j.stats.bytes),
                            fresh: formatBytes(j.stats.new_bytes),
                          })}{' '}
                          {j.stats.warnings ? <Badge tone="warn">{t('jobs.warnings', { n: j.stats.warnings })}</Badge> : null}
                        </span>
                      ) : null}
                      {j.state === 'done' && j.kind === 'restore' ? <span>{t('jobs.restoreDone')}</span> : null}
                      {j.state === 'done' && j.kind === 'drill' ? (
                        <a href={href('compliance')}>{t('jobs.drillDone')}</a>
                      ) : null}
                      {j.snapshot && j.kind === 'backup' ? (
                        <div>
                          <a href={href('snapshots', j.department, j.snapshot)}>
                            <code>{j.snapshot.slice(0, 8)}</code>
                          </a>
                        </div>
                      ) : null}
                      {j.log ? (
                        <details class="job-log" data-testid={`job-log-${j.job}`}>
                          <summary>{t('jobs.log')}</summary>
                          <pre>{j.log}</pre>
                        </details>
                      ) : null}
                      {!j.error && !j.stats && !j.snapshot && !j.log && j.state !== 'done' ? '—' : null}
                    </td>
                    <td>
                      <Time value={j.finished} />
                    </td>
                    <td class="nowrap">{secs === null || j.state === 'missed' ? '—' : formatDuration(secs, units())}</td>
                    <td class="wrap-cell">
                      <JobWhat job={j} link />
                    </td>
                    <td>
                      <Time value={j.created} />
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </TableWrap>
        {history.length > kHistoryRows ? (
          <p class="muted small">{t('jobs.historyCut', { n: kHistoryRows, total: history.length })}</p>
        ) : null}
      </Panel>
    </div>
  );
}

/**
 * What a job works on: a backup's paths; the snapshot a drill or a restore
 * reads (linked to it when `link`), and where a restore writes.
 */
function JobWhat({ job, link = false }: { job: Job; link?: boolean }) {
  const snap = jobReads(job);
  if (!snap) return <Paths paths={job.paths} />;
  const name = <code>{snap.slice(0, 8)}</code>;
  const shown = link ? <a href={href('snapshots', job.department, snap)}>{name}</a> : name;
  if (job.kind === 'restore') {
    return (
      <span>
        {t('jobs.restoreOf')} {shown} {t('jobs.restoreInto')} <code class="wrap">{job.restore_target}</code>
      </span>
    );
  }
  return (
    <span>
      {t('jobs.drillOf')} {shown}
    </span>
  );
}

function RunningJob({ job }: { job: Job }) {
  const p = job.progress;
  const pct = p ? percentDone(p.bytes_done, p.bytes_total) : null;
  const label = jobStateLabel(job.state);
  return (
    <div class="running-job" data-testid={`job-row-${job.job}`}>
      <div class="running-head">
        <strong>
          {t('jobs.jobN', { id: job.job })} · {job.host}
        </strong>{' '}
        <span class="muted">({job.department})</span>{' '}
        <Badge tone={jobTone(job.state)}>{label ? t(label) : job.state}</Badge>{' '}
        {job.kind !== 'backup' ? <Badge tone="neutral">{t(jobKindKey(job))}</Badge> : null}
      </div>
      <div class="muted small">
        <JobWhat job={job} /> ·{' '}
        {t('jobs.created')} <Time value={job.created} />
      </div>
      {p ? (
        <>
          <div
            class={`progress ${pct === null ? 'progress-unknown' : ''}`}
            role="progressbar"
            aria-valuemin={0}
            aria-valuemax={100}
            aria-valuenow={pct === null ? undefined : Math.round(pct)}
            aria-label={t('jobs.progress')}
          >
            <div class="progress-bar" style={{ width: pct === null ? '100%' : `${pct}%` }} />
          </div>
          <div class="progress-figures" data-testid={`job-progress-${job.job}`}>
            <span>
              {p.bytes_total !== null
                ? t('jobs.bytesOf', { done: formatBytes(p.bytes_done), total: formatBytes(p.bytes_total) })
                : t('jobs.bytesDone', { done: formatBytes(p.bytes_done) })}
              {pct !== null ? ` (${pct.toFixed(0)}%)` : ''}
            </span>
            <span>{t('jobs.files', { n: p.files })}</span>
            <span>{t('jobs.newData', { bytes: formatBytes(p.new_bytes) })}</span>
            {/* A rate over the first few milliseconds means nothing. */}
            <span>{t('jobs.rate', { rate: p.elapsed_seconds >= 1 ? formatRate(p.bytes_per_second) : '—' })}</span>
            <span>{t('jobs.eta', { eta: formatEta(p.eta_seconds, t('jobs.etaUnknown'), units()) })}</span>
            <span>{t('jobs.elapsed', { d: formatDuration(Math.max(p.elapsed_seconds, ageSeconds(job.sent) ?? 0), units()) })}</span>
            <span class="muted">{t('jobs.reported', { d: formatDuration(ageSeconds(p.reported), units()) })}</span>
          </div>
        </>
      ) : (
        <p class="muted small">{job.state === 'queued' ? t('jobs.waitingForAgent') : t('jobs.noProgressYet')}</p>
      )}
    </div>
  );
}

function BackupNow({ onStarted }: { onStarted: () => void }) {
  const { api } = useApp();
  const sources = useResource(() => api.get<{ sources: Source[] }>('/sources'), []);
  const agents = useResource(() => api.get<{ agents: Agent[] }>('/agents'), []);
  const [choice, setChoice] = useState('');
  const [agent, setAgent] = useState('');
  const [paths, setPaths] = useState('');
  const [queued, setQueued] = useState<Job | null>(null);
  const start = useAction(async (body: Record<string, unknown>) => api.post<Job>('/jobs', body));

  const srcs = sources.data?.sources ?? [];
  const agentList = (agents.data?.agents ?? []).filter((a) => a.role === 'agent' && !a.revoked);
  const selected = choice || (srcs[0] ? `source:${srcs[0].source}` : 'other');
  const chosenAgent = agent || agentList[0]?.serial || '';

  const submit = async (e: Event) => {
    e.preventDefault();
    setQueued(null);
    let body: Record<string, unknown>;
    if (selected.startsWith('source:')) {
      // The vault takes the source's agent, paths and policy (excludes,
      // compression level, bandwidth) itself, and counts the job in its series.
      const s = srcs.find((x) => `source:${x.source}` === selected);
      if (!s) return;
      body = { source: s.source };
    } else {
      const a = agentList.find((x) => x.serial === chosenAgent);
      body = { agent: chosenAgent, ...(a ? { department: a.department } : {}) };
      const ps = paths
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l);
      if (ps.length) body.paths = ps;
    }
    const j = await start.run(body);
    if (j) {
      setQueued(j);
      onStarted();
    }
  };

  return (
    <Panel title={t('jobs.backupNowTitle')} testid="backup-now">
      <form noValidate onSubmit={submit}>
        <div class="row">
          <div class="field grow">
            <label for="job-source">{t('jobs.what')}</label>
            <select
              id="job-source"
              data-testid="job-source"
              value={selected}
              onChange={(e) => setChoice((e.target as HTMLSelectElement).value)}
            >
              {srcs.map((s) => (
                <option key={s.source} value={`source:${s.source}`}>
                  {`${s.department} · ${s.host} · ${s.paths.join(', ')}`}
                </option>
              ))}
              <option value="other">{t('jobs.otherPaths')}</option>
            </select>
          </div>
          {selected === 'other' ? (
            <>
              <div class="field">
                <label for="job-agent">{t('sources.agent')}</label>
                <select
                  id="job-agent"
                  data-testid="job-agent"
                  value={chosenAgent}
                  onChange={(e) => setAgent((e.target as HTMLSelectElement).value)}
                >
                  {agentList.map((a) => (
                    <option key={a.serial} value={a.serial}>
                      {`${a.department} · ${a.host}`}
                    </option>
                  ))}
                </select>
              </div>
              <div class="field grow">
                <label for="job-paths">{t('sources.paths')}</label>
                <textarea
                  id="job-paths"
                  data-testid="job-paths"
                  rows={2}
                  value={paths}
                  placeholder="/srv/data"
                  onInput={(e) => setPaths((e.target as HTMLTextAreaElement).value)}
                />
              </div>
            </>
          ) : null}
          <div class="field shrink">
            <span class="label" aria-hidden="true">
              &nbsp;
            </span>
            <button
              type="submit"
              class="btn btn-primary"
              data-testid="job-backup-now"
              disabled={start.busy || (selected === 'other' && !chosenAgent)}
            >
              {t('jobs.backupNow')}
            </button>
          </div>
        </div>
        <ErrorNote error={start.error} testid="job-backup-error" />
        {queued ? (
          <Note kind="ok" testid="job-backup-queued">
            {t('jobs.queued', { id: queued.job, host: queued.host })}
          </Note>
        ) : null}
        <p class="muted small">{t('jobs.backupNowNote')}</p>
      </form>
    </Panel>
  );
}
