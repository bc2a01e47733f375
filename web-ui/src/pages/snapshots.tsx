import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, seg } from '../api/client';
import type { Agent, Department, Job, Policy, Snapshot, Source } from '../api/types';
import { SnapshotBrowser } from '../components/snapshot-browser';
import { Badge, CommandLine, ConfirmDialog, EmptyRow, ErrorNote, LoadState, Note, Panel, Paths, Select, TableWrap, TextField, Time } from '../components/ui';
import { useApp, useCan } from '../context';
import { t, units } from '../i18n';
import { formatBytes, formatDuration, parseTime } from '../lib/format';
import { useAction, useResource } from '../lib/hooks';
import { restoreCommands } from '../lib/commands';
import { splitPath } from '../lib/tree';
import { href, navigate } from '../router';

/**
 * #/snapshots/<department>/<snapshot>/<name>/<name>...: the department's
 * snapshots, one opened, and the directory of it that the file browser shows.
 */
export function SnapshotsPage({ args }: { args: string[] }) {
  const { api } = useApp();
  const depts = useResource(() => api.get<{ departments: Department[] }>('/departments'), []);
  const names = (depts.data?.departments ?? []).map((d) => d.name);
  const department = args[0] || names[0] || '';
  const selectedId = args[1] ?? '';
  const browsePath = '/' + args.slice(2).join('/');
  const snaps = useResource(
    () =>
      department
        ? api.get<{ snapshots: Snapshot[] }>(`/departments/${seg(department)}/snapshots`)
        : Promise.resolve({ snapshots: [] as Snapshot[] }),
    [department],
    30000,
  );
  const list = snaps.data?.snapshots ?? [];

  return (
    <div class="page" data-testid="snapshots-page">
      <Panel
        title={department ? t('snapshots.listTitle', { department }) : t('snapshots.title')}
        testid="snapshots-list"
        actions={
          <Select
            id="snap-department"
            testid="snap-department"
            label={t('common.department')}
            value={department}
            options={names.map((n) => ({ value: n, label: n }))}
            onChange={(v) => navigate('snapshots', v)}
          />
        }
      >
        <LoadState loading={depts.loading || snaps.loading} error={depts.error || snaps.error} hasData={!!snaps.data} />
        {!depts.loading && names.length === 0 ? <Note>{t('snapshots.noDepartments')}</Note> : null}
        <TableWrap label={t('snapshots.title')}>
          <table>
            <thead>
              <tr>
                <th scope="col">{t('snapshots.id')}</th>
                <th scope="col">{t('snapshots.time')}</th>
                <th scope="col">{t('common.host')}</th>
                <th scope="col">{t('common.paths')}</th>
                <th scope="col">{t('snapshots.kind')}</th>
                <th scope="col">{t('snapshots.read')}</th>
                <th scope="col">{t('snapshots.files')}</th>
                <th scope="col">{t('snapshots.size')}</th>
                <th scope="col">{t('snapshots.new')}</th>
                <th scope="col">{t('common.state')}</th>
              </tr>
            </thead>
            <tbody>
              {list.length === 0 && snaps.data ? <EmptyRow cols={10} text={t('snapshots.none')} /> : null}
              {list.map((s) => (
                <tr
                  key={s.id}
                  data-testid={`snap-row-${s.short_id}`}
                  class={selectedId && s.id.startsWith(selectedId) ? 'selected' : ''}
                >
                  <td>
                    <a href={href('snapshots', department, s.id)} data-testid={`snap-open-${s.short_id}`}>
                      <code>{s.short_id}</code>
                    </a>
                  </td>
                  <td>
                    <Time value={s.time} />
                  </td>
                  <td>{s.host}</td>
                  <td>
                    <Paths paths={s.paths} />
                  </td>
                  <td>{s.kind === 'image' ? t('snapshots.kindImage') : t('snapshots.kindFiles')}</td>
                  <td>
                    <PointInTime s={s} short />
                  </td>
                  <td class="num">{s.files}</td>
                  <td class="num">{formatBytes(s.bytes)}</td>
                  <td class="num">{formatBytes(s.new_bytes)}</td>
                  <td>
                    <SnapshotState s={s} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      </Panel>
      {selectedId && department ? <SnapshotDetail key={`${department}/${selectedId}`} department={department} id={selectedId} path={browsePath} /> : null}
    </div>
  );
}

/**
 * How the agent read the data: a point-in-time view (method, and when it
 * was taken unless `short`), or live, which is not point-in-time.
 */
function PointInTime({ s, short = false }: { s: Snapshot; short?: boolean }) {
  const p = s.point_in_time;
  if (!p) return <Badge tone="warn">{t('snapshots.readLive')}</Badge>;
  return (
    <span>
      <Badge tone="ok">{p.method}</Badge>
      {short ? null : (
        <>
          {' '}
          {t('snapshots.viewTaken')} <Time value={p.taken} />
        </>
      )}
    </span>
  );
}

function SnapshotState({ s }: { s: Snapshot }) {
  const locked = parseTime(s.locked_until);
  return (
    <span class="badges">
      {s.damaged ? <Badge tone="bad">{t('snapshots.damaged')}</Badge> : <Badge tone="ok">{t('snapshots.intact')}</Badge>}
      {locked && locked.getTime() > Date.now() ? <Badge tone="info">{t('snapshots.locked')}</Badge> : null}
    </span>
  );
}

function SnapshotDetail({ department, id, path }: { department: string; id: string; path: string }) {
  const { api } = useApp();
  const mayRestore = useCan('snapshot.restore');
  const mayBrowse = useCan('snapshot.browse');
  const mayDrill = useCan('snapshot.drill');
  const snap = useResource(() => api.get<Snapshot>(`/departments/${seg(department)}/snapshots/${seg(id)}`), [department, id]);
  const sources = useResource(() => api.get<{ sources: Source[] }>('/sources'), []);
  const policies = useResource(() => api.get<{ policies: Policy[] }>('/policies'), []);
  const s = snap.data;

  // A snapshot opened from a long list would open below the window: bring
  // its details into view once, when they arrive (not on every directory).
  const box = useRef<HTMLDivElement>(null);
  const loaded = !!s;
  useEffect(() => {
    const el = box.current;
    if (!loaded || !el || typeof el.scrollIntoView !== 'function') return;
    if (el.getBoundingClientRect().top > window.innerHeight * 0.6) el.scrollIntoView({ block: 'start' });
  }, [loaded]);

  // The RTO of the policy whose source covers this snapshot's series, for the drill command.
  let rto = 0;
  if (s) {
    const key = [...s.paths].sort().join('\n');
    const src = (sources.data?.sources ?? []).find(
      (x) => x.department === department && x.host === s.host && [...x.paths].sort().join('\n') === key,
    );
    rto = (policies.data?.policies ?? []).find((p) => p.name === src?.policy)?.rto_seconds ?? 0;
  }

  return (
    <div ref={box}>
      <Panel title={t('snapshots.detailTitle', { id: s?.short_id ?? id })} testid="snapshot-detail">
        <LoadState loading={snap.loading} error={snap.error} hasData={!!s} />
        {s ? (
          <>
            <dl class="facts wide">
              <dt>{t('snapshots.fullId')}</dt>
              <dd>
                <code data-testid="snapshot-id">{s.id}</code>
              </dd>
              <dt>{t('common.department')}</dt>
              <dd>{s.department}</dd>
              <dt>{t('common.host')}</dt>
              <dd>{s.host}</dd>
              <dt>{t('common.paths')}</dt>
              <dd>
                <Paths paths={s.paths} />
              </dd>
              <dt>{t('snapshots.kind')}</dt>
              <dd>{s.kind === 'image' ? t('snapshots.kindImage') : t('snapshots.kindFiles')}</dd>
              <dt>{t('snapshots.time')}</dt>
              <dd>
                <Time value={s.time} />
              </dd>
              <dt>{t('snapshots.read')}</dt>
              <dd data-testid="snapshot-point-in-time">
                <PointInTime s={s} />
              </dd>
              <dt>{t('snapshots.took')}</dt>
              <dd>
                {(() => {
                  const a = parseTime(s.started ?? null);
                  const b = parseTime(s.finished ?? null);
                  return a && b ? formatDuration((b.getTime() - a.getTime()) / 1000, units()) : '—';
                })()}
              </dd>
              <dt>{t('snapshots.files')}</dt>
              <dd>
                {s.files}
                {s.dirs !== undefined ? ` · ${t('snapshots.dirs', { n: s.dirs })}` : ''}
              </dd>
              <dt>{t('snapshots.size')}</dt>
              <dd>{formatBytes(s.bytes)}</dd>
              <dt>{t('snapshots.new')}</dt>
              <dd>{formatBytes(s.new_bytes)}</dd>
              <dt>{t('snapshots.chunks')}</dt>
              <dd>{s.chunks}</dd>
              <dt>{t('snapshots.warnings')}</dt>
              <dd>{s.warnings ?? 0}</dd>
              <dt>{t('snapshots.lockedUntil')}</dt>
              <dd>{s.locked_until ? <Time value={s.locked_until} /> : <span class="muted">{t('snapshots.notLocked')}</span>}</dd>
              <dt>{t('snapshots.damage')}</dt>
              <dd>
                {s.damaged ? (
                  <Badge tone="bad">{t('snapshots.damaged')}</Badge>
                ) : (
                  <Badge tone="ok">{t('snapshots.intact')}</Badge>
                )}{' '}
                {s.damaged ? <Time value={s.damaged} /> : null}
              </dd>
            </dl>

            {mayDrill ? <DrillNow department={department} snapshot={s} /> : null}

            <h3>{t('snapshots.browseTitle')}</h3>
            {mayBrowse ? (
              <SnapshotBrowser
                department={department}
                snapshot={s}
                path={path}
                linkTo={(p) => href('snapshots', department, id, ...splitPath(p))}
              />
            ) : (
              <Note testid="snapshot-browse-auditor">{t('snapshots.browseNotForRole')}</Note>
            )}

            {mayRestore ? <RestoreToAgent department={department} snapshot={s} /> : null}
            {mayRestore ? <RestoreCommands snapshot={s} rtoSeconds={rto} /> : null}
          </>
        ) : null}
      </Panel>
    </div>
  );
}

/**
 * Queues a restore drill of the snapshot now (POST .../drill): on a drill
 * host of the department, with its policy's check and RTO. The vault's
 * refusal (no drill host yet) is shown whole, with what to do about it.
 */
function DrillNow({ department, snapshot }: { department: string; snapshot: Snapshot }) {
  const { api } = useApp();
  const mayEnrol = useCan('token.create');
  const [queued, setQueued] = useState<Job | null>(null);
  const drill = useAction(() =>
    api.post<Job>(`/departments/${seg(department)}/snapshots/${seg(snapshot.id)}/drill`, {}),
  );
  const noDrillHost = drill.error instanceof ApiError && /no drill host/i.test(drill.error.message);
  return (
    <div class="drill-now" data-testid="snapshot-drill">
      <h3>{t('snapshots.drillNowTitle')}</h3>
      <p class="muted">{t('snapshots.drillNowIntro')}</p>
      <button
        type="button"
        class="btn btn-primary"
        data-testid="snapshot-drill-now"
        disabled={drill.busy}
        onClick={async () => {
          setQueued(null);
          const j = await drill.run();
          if (j) setQueued(j);
        }}
      >
        {drill.busy ? t('common.working') : t('snapshots.drillNow')}
      </button>
      <div aria-live="polite">
        {queued ? (
          <Note kind="ok" testid="snapshot-drill-queued">
            {t('snapshots.drillQueued', { id: queued.job, host: queued.host || '—' })}{' '}
            <a href={href('jobs')} data-testid="snapshot-drill-jobs">
              {t('snapshots.drillSeeJobs')}
            </a>
          </Note>
        ) : null}
        <ErrorNote error={drill.error} testid="snapshot-drill-error" />
        {noDrillHost ? (
          <p class="small" data-testid="snapshot-drill-hint">
            {t('snapshots.drillHostHint')}{' '}
            {mayEnrol ? <a href={href('departments')}>{t('snapshots.drillHostHintLink')}</a> : null}
          </p>
        ) : null}
      </div>
    </div>
  );
}

/**
 * Restores the whole snapshot on an agent of the department (POST
 * .../restore): into a new or empty directory, never over files. Asks
 * first, saying where the files go; the vault's refusal stays in the dialog.
 */
function RestoreToAgent({ department, snapshot }: { department: string; snapshot: Snapshot }) {
  const { api } = useApp();
  const agents = useResource(() => api.get<{ agents: Agent[] }>('/agents'), []);
  const list = (agents.data?.agents ?? []).filter(
    (a) => a.role === 'agent' && !a.revoked && a.department === department,
  );
  const own = list.find((a) => a.host === snapshot.host);
  const [agent, setAgent] = useState('');
  const [target, setTarget] = useState(`/srv/restore/${snapshot.short_id}`);
  const [asking, setAsking] = useState(false);
  const [queued, setQueued] = useState<Job | null>(null);
  const chosen = list.find((a) => a.serial === agent) ?? own ?? list[0];
  const t0 = target.trim();
  const badTarget = !t0.startsWith('/') || t0 === '/' ? t('snapshots.restoreTargetBad') : '';
  return (
    <div class="restore-agent" data-testid="snapshot-restore-agent">
      <h3>{t('snapshots.restoreAgentTitle')}</h3>
      <p class="muted">{t('snapshots.restoreAgentIntro')}</p>
      <LoadState loading={agents.loading} error={agents.error} hasData={!!agents.data} />
      {agents.data && list.length === 0 ? <Note testid="snapshot-restore-no-agent">{t('snapshots.restoreNoAgent')}</Note> : null}
      {list.length > 0 ? (
        <form
          noValidate
          onSubmit={(e) => {
            e.preventDefault();
            if (!badTarget && chosen) setAsking(true);
          }}
        >
          <div class="row">
            <Select
              id="restore-agent"
              testid="restore-agent"
              label={t('snapshots.restoreAgent')}
              value={chosen?.serial ?? ''}
              options={list.map((a) => ({ value: a.serial, label: a.host }))}
              onChange={(v) => setAgent(v)}
            />
            <TextField id="restore-agent-target" label={t('snapshots.target')} grow value={target}
              onInput={setTarget} invalid={!!badTarget} />
            <div class="field shrink">
              <span class="label" aria-hidden="true">
                &nbsp;
              </span>
              <button type="submit" class="btn btn-primary" data-testid="restore-agent-start" disabled={!!badTarget}>
                {t('snapshots.restoreStart')}
              </button>
            </div>
          </div>
          {badTarget ? <Note kind="warn">{badTarget}</Note> : null}
        </form>
      ) : null}
      <div aria-live="polite">
        {queued ? (
          <Note kind="ok" testid="snapshot-restore-queued">
            {t('snapshots.restoreQueued', { id: queued.job, host: queued.host, target: queued.restore_target ?? t0 })}{' '}
            <a href={href('jobs')}>{t('snapshots.drillSeeJobs')}</a>
          </Note>
        ) : null}
      </div>
      {asking && chosen ? (
        <ConfirmDialog
          title={t('snapshots.restoreConfirmTitle', { id: snapshot.short_id })}
          consequence={t('snapshots.restoreConsequence', {
            files: snapshot.files,
            size: formatBytes(snapshot.bytes),
            host: chosen.host,
            target: t0,
          })}
          confirmLabel={t('snapshots.restoreStart')}
          onConfirm={async () => {
            setQueued(null);
            const j = await api.post<Job>(`/departments/${seg(department)}/snapshots/${seg(snapshot.id)}/restore`, {
              agent: chosen.serial,
              target: t0,
            });
            setQueued(j);
          }}
          onClose={() => setAsking(false)}
        />
      ) : null}
    </div>
  );
}

function RestoreCommands({ snapshot, rtoSeconds }: { snapshot: Snapshot; rtoSeconds: number }) {
  const [state, setState] = useState('/var/lib/cairn-agent');
  const [target, setTarget] = useState(`/srv/restore/${snapshot.short_id}`);
  const [sandbox, setSandbox] = useState(`/var/tmp/cairn-drill-${snapshot.short_id}`);
  const cmds = restoreCommands({ snapshot: snapshot.id, state, target, sandbox, rtoSeconds });
  const input = (id: string, label: string, value: string, set: (v: string) => void) => (
    <TextField id={id} label={label} grow value={value} onInput={set} />
  );
  return (
    <div class="restore" data-testid="snapshot-restore">
      <h3>{t('snapshots.restoreTitle')}</h3>
      <p class="muted">{t('snapshots.restoreIntro')}</p>
      <div class="row">
        {input('restore-state', t('snapshots.stateDir'), state, setState)}
        {input('restore-target', t('snapshots.target'), target, setTarget)}
        {input('restore-sandbox', t('snapshots.sandbox'), sandbox, setSandbox)}
      </div>
      <h4>{t('snapshots.restoreCmd')}</h4>
      <CommandLine command={cmds.restore} testid="snapshot-restore-command" />
      <h4>{t('snapshots.verifyCmd')}</h4>
      <CommandLine command={cmds.verify} testid="snapshot-verify-command" />
      <h4>{t('snapshots.drillCmd')}</h4>
      <CommandLine command={cmds.drill} testid="snapshot-drill-command" />
      <p class="muted small">{t('snapshots.restoreNote')}</p>
    </div>
  );
}
