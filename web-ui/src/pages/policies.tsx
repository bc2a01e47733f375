import { useEffect, useRef, useState } from 'preact/hooks';
import { seg } from '../api/client';
import type { Agent, Department, Job, Policy, PolicyTemplate, Source } from '../api/types';
import { Badge, ConfirmDialog, EmptyRow, ErrorNote, LoadState, Note, Panel, Paths, Select, TableWrap, TextField, Time, YesNo } from '../components/ui';
import { useApp, useCan } from '../context';
import { t, units, type MessageKey } from '../i18n';
import { formatDuration } from '../lib/format';
import { useAction, useResource } from '../lib/hooks';
import {
  changedFields,
  draftFromPolicy,
  draftFromTemplate,
  parseDraft,
  pitFits,
  pitMethods,
  retentionParts,
  type DraftErrors,
  type PolicyDraft,
} from '../lib/policy';

const keepLabel: Record<string, MessageKey> = {
  last: 'policy.keep.last',
  hourly: 'policy.keep.hourly',
  daily: 'policy.keep.daily',
  weekly: 'policy.keep.weekly',
  monthly: 'policy.keep.monthly',
  yearly: 'policy.keep.yearly',
};

export function retentionText(p: Policy): string {
  const parts = retentionParts(p);
  if (parts.length === 0) return t('policy.keepAll');
  return parts.map(([n, unit]) => t(keepLabel[unit], { n })).join(t('common.listSep'));
}

const templateKey: Record<string, MessageKey> = {
  level2: 'template.level2',
  level3: 'template.level3',
  level4: 'template.level4',
};

/** A template's description in the console's language; the vault's own for one it does not know. */
function templateDescription(tp: PolicyTemplate): string {
  const key = templateKey[tp.name];
  return key ? t(key) : tp.description;
}

function dur(seconds: number): string {
  return seconds ? formatDuration(seconds, units()) : '—';
}

export function PoliciesPage() {
  const { api } = useApp();
  const mayEdit = useCan('policy.edit');
  const maySources = useCan('source.edit');
  const policies = useResource(
    () => api.get<{ policies: Policy[]; templates: PolicyTemplate[] }>('/policies'),
    [],
  );
  const sources = useResource(() => api.get<{ sources: Source[] }>('/sources'), []);
  const [editing, setEditing] = useState<Policy | 'new' | null>(null);
  const [saved, setSaved] = useState<string | null>(null);

  const list = policies.data?.policies ?? [];
  const templates = policies.data?.templates ?? [];

  return (
    <div class="page" data-testid="policies-page">
      <Panel
        title={t('policies.title')}
        testid="policies-list"
        actions={
          mayEdit ? (
            <button
              type="button"
              class="btn btn-primary"
              data-testid="policy-new"
              onClick={() => {
                setSaved(null);
                setEditing('new');
              }}
            >
              {t('policies.new')}
            </button>
          ) : null
        }
      >
        <LoadState loading={policies.loading} error={policies.error} hasData={!!policies.data} />
        {saved ? (
          <Note kind="ok" testid="policy-saved">
            {t('policies.saved', { name: saved })}
          </Note>
        ) : null}
        <TableWrap label={t('policies.title')}>
          <table>
            <thead>
              <tr>
                <th scope="col">{t('policies.name')}</th>
                <th scope="col">{t('policies.template')}</th>
                <th scope="col">{t('policies.schedule')}</th>
                <th scope="col">{t('policies.retention')}</th>
                <th scope="col">{t('policies.rpo')}</th>
                <th scope="col">{t('policies.rto')}</th>
                <th scope="col">{t('policies.drillEvery')}</th>
                <th scope="col">{t('policies.offsite')}</th>
                <th scope="col">{t('policies.lock')}</th>
                <th scope="col">{t('policies.sources')}</th>
                {mayEdit ? <th scope="col">{t('common.actions')}</th> : null}
              </tr>
            </thead>
            <tbody>
              {list.length === 0 && !policies.loading ? <EmptyRow cols={mayEdit ? 11 : 10} text={t('policies.none')} /> : null}
              {list.map((p) => (
                <tr key={p.name} data-testid={`policy-row-${p.name}`}>
                  <th scope="row">{p.name}</th>
                  <td>{p.template || <span class="muted">{t('policies.noTemplate')}</span>}</td>
                  <td>
                    <code>{p.schedule || '—'}</code>
                  </td>
                  <td>{retentionText(p)}</td>
                  <td class="nowrap">{dur(p.rpo_seconds)}</td>
                  <td class="nowrap">{dur(p.rto_seconds)}</td>
                  <td class="nowrap">{dur(p.drill_every_seconds)}</td>
                  <td>
                    <YesNo value={p.offsite} />
                  </td>
                  <td class="nowrap">{dur(p.lock_seconds)}</td>
                  <td class="num">{(sources.data?.sources ?? []).filter((s) => s.policy === p.name).length}</td>
                  {mayEdit ? (
                    <td>
                      <button
                        type="button"
                        class="btn btn-small"
                        data-testid={`policy-edit-${p.name}`}
                        onClick={() => {
                          setSaved(null);
                          setEditing(p);
                        }}
                      >
                        {t('common.edit')}
                      </button>
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
        <details class="templates">
          <summary>{t('policies.templatesTitle')}</summary>
          <ul>
            {templates.map((tp) => (
              <li key={tp.name}>
                <strong>{tp.name}</strong>: {templateDescription(tp)}{' '}
                <span class="muted">
                  ({t('policies.templateFloor', {
                    gap: formatDuration(tp.max_gap_seconds, units()),
                    offsite: tp.offsite_required ? t('common.yes') : t('common.no'),
                    lock: tp.min_lock_seconds ? formatDuration(tp.min_lock_seconds, units()) : '—',
                  })})
                </span>
              </li>
            ))}
          </ul>
        </details>
      </Panel>

      {editing ? (
        <PolicyForm
          key={editing === 'new' ? 'new' : editing.name}
          policy={editing === 'new' ? null : editing}
          templates={templates}
          onCancel={() => setEditing(null)}
          onSaved={(p) => {
            setEditing(null);
            setSaved(p.name);
            void policies.reload();
          }}
        />
      ) : null}

      <SourcesPanel
        sources={sources.data?.sources ?? []}
        loading={sources.loading}
        error={sources.error}
        policies={list}
        mayEdit={maySources}
        reload={() => sources.reload()}
      />
    </div>
  );
}

function PolicyForm({
  policy,
  templates,
  onCancel,
  onSaved,
}: {
  policy: Policy | null;
  templates: PolicyTemplate[];
  onCancel: () => void;
  onSaved: (p: Policy) => void;
}) {
  const { api } = useApp();
  const creating = policy === null;
  const [draft, setDraft] = useState<PolicyDraft>(() => (policy ? draftFromPolicy(policy) : draftFromTemplate('', 'level3')));
  const [errors, setErrors] = useState<DraftErrors>({});
  const save = useAction(async (body: Record<string, unknown>) =>
    creating ? api.post<Policy>('/policies', body) : api.patch<Policy>(`/policies/${seg(policy!.name)}`, body),
  );
  const [nothing, setNothing] = useState(false);
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    box.current?.scrollIntoView({ block: 'start' });
    box.current?.querySelector<HTMLElement>('input, select')?.focus({ preventScroll: true });
  }, []);

  const set = <K extends keyof PolicyDraft>(key: K, value: PolicyDraft[K]) => {
    setNothing(false);
    setDraft((d) => ({ ...d, [key]: value }));
  };

  const submit = async (e: Event) => {
    e.preventDefault();
    const parsed = parseDraft(draft);
    const errs: DraftErrors = { ...parsed.errors };
    if (creating && draft.name.trim() === '') errs.name = 'required';
    setErrors(errs);
    if (Object.keys(errs).length) return;
    let body: Record<string, unknown>;
    if (creating) {
      // From a template: only what differs from the template's own start.
      const base = parseDraft(draftFromTemplate('', draft.template)).fields;
      body = { name: draft.name.trim(), ...(draft.template ? { template: draft.template } : {}) };
      Object.assign(body, draft.template ? changedFields(base, parsed.fields) : parsed.fields);
    } else {
      body = changedFields(parseDraft(draftFromPolicy(policy!)).fields, parsed.fields);
      if (Object.keys(body).length === 0) {
        setNothing(true);
        return;
      }
    }
    const p = await save.run(body);
    if (p) onSaved(p);
  };

  const errorText = (key: keyof PolicyDraft) => {
    const e = errors[key];
    if (!e) return null;
    const msg: Record<string, MessageKey> = {
      number: 'policy.err.number',
      duration: 'policy.err.duration',
      bytes: 'policy.err.bytes',
      required: 'policy.err.required',
    };
    return (
      <small class="field-error" id={`policy-form-${key}-error`} data-testid={`policy-form-${key}-error`}>
        {t(msg[e])}
      </small>
    );
  };

  const text = (key: keyof PolicyDraft, label: MessageKey, help?: MessageKey, placeholder?: string) => (
    <div class="field">
      <label for={`policy-form-${key}`}>{t(label)}</label>
      <input
        id={`policy-form-${key}`}
        data-testid={`policy-form-${key}`}
        value={String(draft[key])}
        placeholder={placeholder}
        aria-invalid={errors[key] ? true : undefined}
        aria-describedby={help ? `policy-form-${key}-help` : undefined}
        onInput={(e) => set(key, (e.target as HTMLInputElement).value as never)}
      />
      {help ? (
        <small class="muted" id={`policy-form-${key}-help`}>
          {t(help)}
        </small>
      ) : null}
      {errorText(key)}
    </div>
  );

  const checkbox = (key: 'offsite' | 'hook_failure_continue', id: string, label: MessageKey) => (
    <div class="field checkbox">
      <input
        id={id}
        data-testid={id}
        type="checkbox"
        checked={draft[key]}
        onChange={(e) => set(key, (e.target as HTMLInputElement).checked)}
      />
      <label for={id}>{t(label)}</label>
    </div>
  );
  const number = (key: keyof PolicyDraft, label: MessageKey) => (
    <div class="field narrow">
      <label for={`policy-form-${key}`}>{t(label)}</label>
      <input
        id={`policy-form-${key}`}
        data-testid={`policy-form-${key}`}
        type="number"
        min="0"
        inputMode="numeric"
        value={String(draft[key])}
        aria-invalid={errors[key] ? true : undefined}
        onInput={(e) => set(key, (e.target as HTMLInputElement).value as never)}
      />
      {errorText(key)}
    </div>
  );

  const tmpl = templates.find((x) => x.name === draft.template);

  return (
    <div ref={box}>
      <Panel title={creating ? t('policy.newTitle') : t('policy.editTitle', { name: policy!.name })} testid="policy-form">
        <form onSubmit={submit} noValidate>
          <div class="row">
            {creating ? (
              text('name', 'policy.name', 'policy.nameHelp')
            ) : (
              <div class="field">
                <span class="label">{t('policy.name')}</span>
                <strong>{policy!.name}</strong>
              </div>
            )}
            {creating ? (
              <div class="field">
                <label for="policy-form-template">{t('policy.template')}</label>
                <select
                  id="policy-form-template"
                  data-testid="policy-form-template"
                  value={draft.template}
                  onChange={(e) => {
                    const v = (e.target as HTMLSelectElement).value;
                    setDraft((d) => draftFromTemplate(d.name, v));
                  }}
                >
                  {templates.map((x) => (
                    <option value={x.name} key={x.name}>
                      {x.name}
                    </option>
                  ))}
                  <option value="">{t('policy.noTemplate')}</option>
                </select>
                <small class="muted">{tmpl ? templateDescription(tmpl) : t('policy.noTemplateHelp')}</small>
              </div>
            ) : (
              <div class="field">
                <span class="label">{t('policy.template')}</span>
                <span>{policy!.template || t('policy.noTemplate')}</span>
              </div>
            )}
          </div>
          {creating && draft.template ? <p class="muted small">{t('policy.templatePrefill')}</p> : null}

          <fieldset>
            <legend>{t('policy.whenLegend')}</legend>
            <div class="row">
              {text('schedule', 'policy.schedule', 'policy.scheduleHelp', 'daily')}
              {text('rpo', 'policy.rpo', 'policy.durationHelp', '24h')}
              {text('rto', 'policy.rto', 'policy.durationHelp', '8h')}
            </div>
          </fieldset>

          <fieldset>
            <legend>{t('policy.keepLegend')}</legend>
            <div class="row">
              {number('keep_last', 'policy.keepLast')}
              {number('keep_hourly', 'policy.keepHourly')}
              {number('keep_daily', 'policy.keepDaily')}
              {number('keep_weekly', 'policy.keepWeekly')}
              {number('keep_monthly', 'policy.keepMonthly')}
              {number('keep_yearly', 'policy.keepYearly')}
            </div>
            <div class="row">
              {text('lock', 'policy.lock', 'policy.lockHelp', '7d')}
              {checkbox('offsite', 'policy-form-offsite', 'policy.offsite')}
            </div>
          </fieldset>

          <fieldset>
            <legend>{t('policy.drillLegend')}</legend>
            <div class="row">
              {text('drill_every', 'policy.drillEvery', 'policy.drillEveryHelp', '30d')}
              {text('drill_check', 'policy.drillCheck', 'policy.drillCheckHelp', 'test -s srv/db/PG_VERSION')}
              {text('drill_check_timeout', 'policy.drillCheckTimeout', 'policy.drillCheckTimeoutHelp', '10m')}
            </div>
            <div class="row">
              {checkbox('hook_failure_continue', 'policy-form-hook_failure', 'policy.hookFailureContinue')}
            </div>
          </fieldset>

          <fieldset>
            <legend>{t('policy.transferLegend')}</legend>
            <div class="row">
              {number('zstd_level', 'policy.zstdLevel')}
              {text('bandwidth', 'policy.bandwidth', 'policy.bandwidthHelp', '50M')}
            </div>
          </fieldset>

          <div class="form-error-slot" aria-live="polite">
            <ErrorNote error={save.error} testid="policy-form-error" />
            {nothing ? <Note testid="policy-form-unchanged">{t('policy.unchanged')}</Note> : null}
          </div>
          <div class="form-actions">
            <button type="button" class="btn" data-testid="policy-form-cancel" onClick={onCancel}>
              {t('common.cancel')}
            </button>
            <button type="submit" class="btn btn-primary" data-testid="policy-form-submit" disabled={save.busy}>
              {creating ? t('policy.create') : t('policy.save')}
            </button>
          </div>
        </form>
      </Panel>
    </div>
  );
}

function SourcesPanel({
  sources,
  loading,
  error,
  policies,
  mayEdit,
  reload,
}: {
  sources: Source[];
  loading: boolean;
  error: unknown;
  policies: Policy[];
  mayEdit: boolean;
  reload: () => void;
}) {
  const { api } = useApp();
  const mayBackup = useCan('job.start');
  const [removing, setRemoving] = useState<Source | null>(null);
  const [adding, setAdding] = useState(false);
  const [note, setNote] = useState<string | null>(null);
  // With the source's policy: excludes, compression level, bandwidth.
  const backup = useAction(async (s: Source) => api.post<Job>('/jobs', { source: s.source }));
  return (
    <Panel
      title={t('sources.title')}
      testid="sources-list"
      actions={
        mayEdit ? (
          <button type="button" class="btn btn-primary" data-testid="source-add" onClick={() => setAdding((a) => !a)}>
            {adding ? t('common.close') : t('sources.add')}
          </button>
        ) : null
      }
    >
      {adding ? (
        <SourceForm
          policies={policies}
          onAdded={(s) => {
            setAdding(false);
            setNote(t('sources.added', { id: s.source, host: s.host }));
            reload();
          }}
        />
      ) : null}
      <LoadState loading={loading} error={error} hasData={sources.length > 0} />
      {note ? (
        <Note kind="ok" testid="sources-note">
          {note}
        </Note>
      ) : null}
      <ErrorNote error={backup.error} testid="source-backup-error" />
      <TableWrap label={t('sources.title')}>
        <table>
          <thead>
            <tr>
              <th scope="col">{t('sources.id')}</th>
              <th scope="col">{t('common.department')}</th>
              <th scope="col">{t('common.host')}</th>
              <th scope="col">{t('sources.what')}</th>
              <th scope="col">{t('sources.excludes')}</th>
              <th scope="col">{t('sources.pit')}</th>
              <th scope="col">{t('common.policy')}</th>
              <th scope="col">{t('common.created')}</th>
              {mayEdit || mayBackup ? <th scope="col">{t('common.actions')}</th> : null}
            </tr>
          </thead>
          <tbody>
            {sources.length === 0 && !loading ? <EmptyRow cols={9} text={t('sources.none')} /> : null}
            {sources.map((s) => (
              <tr key={s.source} data-testid={`source-row-${s.source}`}>
                <td class="num">{s.source}</td>
                <td>{s.department}</td>
                <td>{s.host}</td>
                <td>
                  {s.image ? <Badge tone="neutral">{t('sources.image')}</Badge> : null} <Paths paths={s.paths} />
                </td>
                <td>{s.excludes.length ? <Paths paths={s.excludes} /> : <span class="muted">—</span>}</td>
                <td>
                  {t(`sources.pit.${s.point_in_time ?? 'auto'}` as 'sources.pit.auto')}
                  {s.pre_command || s.post_command ? <div class="small muted">{t('sources.withHooks')}</div> : null}
                </td>
                <td>{s.policy}</td>
                <td>
                  <Time value={s.created} />
                </td>
                {mayEdit || mayBackup ? (
                  <td class="actions">
                    {mayBackup ? (
                      <button
                        type="button"
                        class="btn btn-small"
                        data-testid={`source-backup-${s.source}`}
                        disabled={backup.busy}
                        onClick={async () => {
                          setNote(null);
                          const j = await backup.run(s);
                          if (j) setNote(t('jobs.queued', { id: j.job, host: j.host }));
                        }}
                      >
                        {t('jobs.backupNow')}
                      </button>
                    ) : null}
                    {mayEdit ? (
                      <button
                        type="button"
                        class="btn btn-small btn-danger"
                        data-testid={`source-remove-${s.source}`}
                        onClick={() => setRemoving(s)}
                      >
                        {t('sources.remove')}
                      </button>
                    ) : null}
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
      {removing ? (
        <ConfirmDialog
          title={t('sources.removeTitle', { id: removing.source })}
          danger
          confirmLabel={t('sources.removeConfirm')}
          consequence={<p>{t('sources.removeConsequence', { host: removing.host, paths: removing.paths.join(', ') })}</p>}
          onConfirm={async () => {
            await api.del(`/sources/${removing.source}`);
            setNote(t('sources.removed', { id: removing.source }));
            reload();
          }}
          onClose={() => setRemoving(null)}
        />
      ) : null}
    </Panel>
  );
}

function lines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

function SourceForm({ policies, onAdded }: { policies: Policy[]; onAdded: (s: Source) => void }) {
  const { api, me } = useApp();
  const depts = useResource(() => api.get<{ departments: Department[] }>('/departments'), []);
  const agents = useResource(() => api.get<{ agents: Agent[] }>('/agents'), []);
  const [dept, setDept] = useState('');
  const [host, setHost] = useState('');
  const [policy, setPolicy] = useState('');
  const [kind, setKind] = useState<'paths' | 'image'>('paths');
  const [paths, setPaths] = useState('');
  const [image, setImage] = useState('');
  const [excludes, setExcludes] = useState('');
  const [pit, setPit] = useState('auto');
  const [pre, setPre] = useState('');
  const [post, setPost] = useState('');
  const add = useAction(async (body: Record<string, unknown>) => api.post<Source>('/sources', body));

  const deptNames = (depts.data?.departments ?? [])
    .map((d) => d.name)
    .filter((n) => me.role !== 'operator' || me.departments.includes(n));
  const department = dept || deptNames[0] || '';
  const hosts = [
    ...new Set(
      (agents.data?.agents ?? [])
        .filter((a) => a.department === department && a.role === 'agent' && !a.revoked)
        .map((a) => a.host),
    ),
  ];
  const chosenHost = host && hosts.includes(host) ? host : hosts[0] || '';
  const chosenPolicy = policy || policies[0]?.name || '';

  return (
    <form noValidate
      class="subform"
      data-testid="source-form"
      onSubmit={async (e) => {
        e.preventDefault();
        const body: Record<string, unknown> = { department, agent: chosenHost, policy: chosenPolicy };
        if (kind === 'paths') body.paths = lines(paths);
        else body.image = image.trim();
        const ex = lines(excludes);
        if (ex.length) body.excludes = ex;
        body.point_in_time = pitFits(pit, kind) ? pit : 'auto';
        if (pre.trim()) body.pre_command = pre.trim();
        if (post.trim()) body.post_command = post.trim();
        const s = await add.run(body);
        if (s) onAdded(s);
      }}
    >
      <div class="row">
        <Select
          id="source-form-department"
          testid="source-form-department"
          label={t('common.department')}
          value={department}
          options={deptNames.map((n) => ({ value: n, label: n }))}
          onChange={(v) => {
            setDept(v);
            setHost('');
          }}
        />
        <Select
          id="source-form-agent"
          testid="source-form-agent"
          label={t('sources.agent')}
          value={chosenHost}
          options={hosts.map((h) => ({ value: h, label: h }))}
          onChange={setHost}
        />
        <Select
          id="source-form-policy"
          testid="source-form-policy"
          label={t('common.policy')}
          value={chosenPolicy}
          options={policies.map((p) => ({ value: p.name, label: p.name }))}
          onChange={setPolicy}
        />
      </div>
      {hosts.length === 0 && !agents.loading ? <Note kind="warn">{t('sources.noAgents')}</Note> : null}
      {policies.length === 0 ? <Note kind="warn">{t('sources.noPolicies')}</Note> : null}
      <fieldset>
        <legend>{t('sources.what')}</legend>
        <div class="row">
          <div class="field checkbox">
            <input
              type="radio"
              id="source-form-kind-paths"
              data-testid="source-form-kind-paths"
              name="source-kind"
              checked={kind === 'paths'}
              onChange={() => setKind('paths')}
            />
            <label for="source-form-kind-paths">{t('sources.kindPaths')}</label>
          </div>
          <div class="field checkbox">
            <input
              type="radio"
              id="source-form-kind-image"
              data-testid="source-form-kind-image"
              name="source-kind"
              checked={kind === 'image'}
              onChange={() => setKind('image')}
            />
            <label for="source-form-kind-image">{t('sources.kindImage')}</label>
          </div>
        </div>
        {kind === 'paths' ? (
          <TextField id="source-form-paths" label={t('sources.paths')} rows={3} placeholder="/srv/db"
            value={paths} onInput={setPaths} help={t('sources.pathsHelp')} />
        ) : (
          <TextField id="source-form-image" label={t('sources.imageDevice')} placeholder="/dev/vg0/db"
            value={image} onInput={setImage} />
        )}
        <TextField id="source-form-excludes" label={t('sources.excludes')} rows={2} placeholder="*.tmp"
          value={excludes} onInput={setExcludes} help={t('sources.excludesHelp')} />
      </fieldset>
      <fieldset>
        <legend>{t('sources.consistency')}</legend>
        <div class="row">
          <Select
            id="source-form-pit"
            testid="source-form-pit"
            label={t('sources.pit')}
            value={pitFits(pit, kind) ? pit : 'auto'}
            options={pitMethods
              .filter((m) => pitFits(m, kind))
              .map((m) => ({ value: m, label: t(`sources.pit.${m}` as 'sources.pit.auto') }))}
            onChange={(v) => setPit(v || 'auto')}
          />
        </div>
        <small class="muted">{t('sources.pitHelp')}</small>
        <div class="row">
          <TextField id="source-form-pre" label={t('sources.preCommand')} grow value={pre} onInput={setPre}
            placeholder="/usr/share/doc/cairn/hooks/postgresql-checkpoint" />
          <TextField id="source-form-post" label={t('sources.postCommand')} grow value={post} onInput={setPost} />
        </div>
        <small class="muted">{t('sources.hooksHelp')}</small>
      </fieldset>
      <ErrorNote error={add.error} testid="source-form-error" />
      <div class="form-actions left">
        <button type="submit" class="btn btn-primary" data-testid="source-form-submit" disabled={add.busy}>
          {t('sources.addSubmit')}
        </button>
      </div>
    </form>
  );
}

