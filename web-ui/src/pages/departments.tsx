import { useState } from 'preact/hooks';
import { seg } from '../api/client';
import type { Agent, Department, EnrolmentToken, Replication, Source } from '../api/types';
import {
  Badge,
  CommandLine,
  ConfirmDialog,
  EmptyRow,
  ErrorNote,
  LoadState,
  Note,
  Panel,
  Paths,
  Select,
  TableWrap,
  Time,
} from '../components/ui';
import { useApp, useCan } from '../context';
import { t, units } from '../i18n';
import { ageSeconds, formatDuration } from '../lib/format';
import { useAction, useResource } from '../lib/hooks';
import { enrolAddress, enrolCommand } from '../lib/commands';

export function DepartmentsPage() {
  const { api, me } = useApp();
  const mayCreate = useCan('department.create');
  const mayToken = useCan('token.create');
  const mayRevoke = useCan('agent.revoke');
  const depts = useResource(() => api.get<{ departments: Department[] }>('/departments'), []);
  const agents = useResource(() => api.get<{ agents: Agent[] }>('/agents'), [], 30000);
  const sources = useResource(() => api.get<{ sources: Source[] }>('/sources'), []);
  const replication = useResource(() => api.get<Replication>('/replication'), []);
  const [filter, setFilter] = useState('');
  const [revoking, setRevoking] = useState<Agent | null>(null);
  const [revoked, setRevoked] = useState<string | null>(null);

  const departments = depts.data?.departments ?? [];
  const agentList = (agents.data?.agents ?? []).filter((a) => !filter || a.department === filter);
  const sourcesOf = (a: Agent) =>
    (sources.data?.sources ?? []).filter((s) => s.department === a.department && s.host === a.host);

  return (
    <div class="page" data-testid="departments-page">
      <div class="grid-2">
        <Panel title={t('departments.title')} testid="departments-list">
          <LoadState loading={depts.loading} error={depts.error} hasData={!!depts.data} />
          <TableWrap label={t('departments.title')}>
            <table>
              <thead>
                <tr>
                  <th scope="col">{t('common.department')}</th>
                  <th scope="col">{t('departments.id')}</th>
                  <th scope="col">{t('departments.agents')}</th>
                  <th scope="col">{t('departments.sources')}</th>
                  <th scope="col">{t('common.created')}</th>
                </tr>
              </thead>
              <tbody>
                {departments.length === 0 && !depts.loading ? <EmptyRow cols={5} text={t('departments.none')} /> : null}
                {departments.map((d) => (
                  <tr key={d.id} data-testid={`dept-row-${d.name}`}>
                    <th scope="row">{d.name}</th>
                    <td class="num">{d.id}</td>
                    <td class="num">
                      {(agents.data?.agents ?? []).filter((a) => a.department === d.name && !a.revoked).length}
                    </td>
                    <td class="num">{(sources.data?.sources ?? []).filter((s) => s.department === d.name).length}</td>
                    <td>
                      <Time value={d.created} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
          {mayCreate ? <CreateDepartment onCreated={() => depts.reload()} /> : null}
        </Panel>

        {mayToken ? (
          <EnrolmentPanel
            departments={me.role === 'operator' ? departments.filter((d) => me.departments.includes(d.name)) : departments}
            addresses={replication.data?.agent_addresses}
          />
        ) : (
          <Panel title={t('enrol.title')} testid="enrol-panel">
            <Note>{t('enrol.notAllowed')}</Note>
          </Panel>
        )}
      </div>

      <Panel
        title={t('agents.title')}
        testid="agents-list"
        actions={
          <Select
            id="agents-filter"
            label={t('common.department')}
            value={filter}
            allLabel={t('common.all')}
            options={departments.map((d) => ({ value: d.name, label: d.name }))}
            onChange={setFilter}
            testid="agents-filter-department"
          />
        }
      >
        <LoadState loading={agents.loading} error={agents.error} hasData={!!agents.data} />
        {revoked ? (
          <Note kind="ok" testid="agent-revoked">
            {t('agents.revokedDone', { serial: revoked })}
          </Note>
        ) : null}
        <TableWrap label={t('agents.title')}>
          <table>
            <thead>
              <tr>
                <th scope="col">{t('common.host')}</th>
                <th scope="col">{t('common.department')}</th>
                <th scope="col">{t('agents.kind')}</th>
                <th scope="col">{t('agents.lastSeen')}</th>
                <th scope="col">{t('agents.drillHost')}</th>
                <th scope="col">{t('common.state')}</th>
                <th scope="col">{t('agents.sources')}</th>
                <th scope="col">{t('agents.serial')}</th>
                <th scope="col">{t('agents.enrolled')}</th>
                {mayRevoke ? <th scope="col">{t('common.actions')}</th> : null}
              </tr>
            </thead>
            <tbody>
              {agentList.length === 0 && !agents.loading ? <EmptyRow cols={mayRevoke ? 10 : 9} text={t('agents.none')} /> : null}
              {agentList.map((a) => {
                const age = ageSeconds(a.last_seen);
                const srcs = sourcesOf(a);
                return (
                  <tr key={a.serial} data-testid={`agent-row-${a.serial}`} class={a.revoked ? 'dim' : ''}>
                    <th scope="row">{a.host}</th>
                    <td>{a.department || '—'}</td>
                    <td>{a.role === 'replicator' ? t('agents.replicator') : t('agents.agent')}</td>
                    <td>
                      {a.last_seen ? (
                        <>
                          <Time value={a.last_seen} />
                          <br />
                          <small class={age !== null && age > 86400 ? 'text-bad' : 'muted'}>
                            {t('common.ago', { d: formatDuration(age, units()) })}
                          </small>
                        </>
                      ) : (
                        <Badge tone="neutral">{t('agents.neverSeen')}</Badge>
                      )}
                    </td>
                    <td>{a.drill_host ? <Badge tone="info">{t('agents.drillHostYes')}</Badge> : <span class="muted">{t('common.no')}</span>}</td>
                    <td>
                      {a.revoked ? (
                        <Badge tone="bad">{t('agents.revoked')}</Badge>
                      ) : (
                        <Badge tone="ok">{t('agents.active')}</Badge>
                      )}
                      {a.revoked_at ? (
                        <div>
                          <small class="muted">
                            <Time value={a.revoked_at} />
                          </small>
                        </div>
                      ) : null}
                    </td>
                    <td>
                      {srcs.length === 0 ? (
                        <span class="muted">
                          {a.role !== 'agent' ? '—' : a.drill_host ? t('agents.drillHostNoSource') : t('agents.noSources')}
                        </span>
                      ) : (
                        srcs.map((s) => (
                          <div key={s.source} class="source-line">
                            <Paths paths={s.paths} /> <small class="muted">({s.policy})</small>
                          </div>
                        ))
                      )}
                    </td>
                    <td>
                      <code title={a.serial}>{a.serial.slice(0, 12)}…</code>
                    </td>
                    <td>
                      <Time value={a.enrolled} />
                    </td>
                    {mayRevoke ? (
                      <td>
                        {!a.revoked && (a.role === 'agent' || me.role === 'admin') ? (
                          <button
                            type="button"
                            class="btn btn-small btn-danger"
                            data-testid={`agent-revoke-${a.serial}`}
                            onClick={() => setRevoking(a)}
                          >
                            {t('agents.revoke')}
                          </button>
                        ) : null}
                      </td>
                    ) : null}
                  </tr>
                );
              })}
            </tbody>
          </table>
        </TableWrap>
      </Panel>
      {revoking ? (
        <ConfirmDialog
          title={t('agents.revokeTitle', { host: revoking.host })}
          danger
          confirmLabel={t('agents.revokeConfirm')}
          consequence={<p>{t('agents.revokeConsequence', { host: revoking.host, department: revoking.department || '—' })}</p>}
          onConfirm={async () => {
            await api.post(`/agents/${seg(revoking.serial)}/revoke`);
            setRevoked(revoking.serial);
            await agents.reload();
          }}
          onClose={() => setRevoking(null)}
        />
      ) : null}
    </div>
  );
}

function CreateDepartment({ onCreated }: { onCreated: () => void }) {
  const { api } = useApp();
  const [name, setName] = useState('');
  const [created, setCreated] = useState<string | null>(null);
  const create = useAction(async (n: string) => api.post<Department>('/departments', { name: n }));
  return (
    <form noValidate
      class="inline-form"
      onSubmit={async (e) => {
        e.preventDefault();
        setCreated(null);
        const d = await create.run(name.trim());
        if (d) {
          setCreated(d.name);
          setName('');
          onCreated();
        }
      }}
    >
      <h3>{t('departments.create')}</h3>
      <div class="row">
        <div class="field">
          <label for="dept-create-name">{t('departments.name')}</label>
          <input
            id="dept-create-name"
            data-testid="dept-create-name"
            required
            value={name}
            aria-describedby="dept-create-help"
            onInput={(e) => setName((e.target as HTMLInputElement).value)}
          />
          <small id="dept-create-help" class="muted">
            {t('departments.nameHelp')}
          </small>
        </div>
        <button type="submit" class="btn btn-primary" data-testid="dept-create-submit" disabled={create.busy}>
          {t('departments.createSubmit')}
        </button>
      </div>
      <ErrorNote error={create.error} testid="dept-create-error" />
      {created ? (
        <Note kind="ok" testid="dept-create-done">
          {t('departments.created', { name: created })}
        </Note>
      ) : null}
    </form>
  );
}

function EnrolmentPanel({ departments, addresses }: { departments: Department[]; addresses: string[] | undefined }) {
  const { api } = useApp();
  const [dept, setDept] = useState('');
  const [hours, setHours] = useState('1');
  const [drillHost, setDrillHost] = useState(false);
  const [token, setToken] = useState<EnrolmentToken | null>(null);
  const make = useAction(async () =>
    api.post<EnrolmentToken>(`/departments/${seg(dept || departments[0]?.name || '')}/tokens`, {
      ttl_seconds: Math.round(Number(hours) * 3600),
      drill_host: drillHost,
    }),
  );
  const { address, guessed } = enrolAddress(addresses, location.hostname);
  const chosen = dept || departments[0]?.name || '';
  return (
    <Panel title={t('enrol.title')} testid="enrol-panel">
      <p class="muted">{t('enrol.intro')}</p>
      <form noValidate
        onSubmit={async (e) => {
          e.preventDefault();
          setToken(null);
          const tk = await make.run();
          if (tk) setToken(tk);
        }}
      >
        <div class="row">
          <Select
            id="token-department"
            label={t('common.department')}
            value={chosen}
            options={departments.map((d) => ({ value: d.name, label: d.name }))}
            onChange={(v) => setDept(v)}
            testid="token-department"
          />
          <div class="field">
            <label for="token-ttl">{t('enrol.ttl')}</label>
            <input
              id="token-ttl"
              data-testid="token-ttl"
              type="number"
              min="0.1"
              max="720"
              step="any"
              value={hours}
              onInput={(e) => setHours((e.target as HTMLInputElement).value)}
            />
          </div>
        </div>
        <div class="field checkbox">
          <input
            id="token-drill-host"
            data-testid="token-drill-host"
            type="checkbox"
            checked={drillHost}
            onChange={(e) => setDrillHost((e.target as HTMLInputElement).checked)}
          />
          <label for="token-drill-host">{t('enrol.drillHost')}</label>
        </div>
        <p class="muted small">{t('enrol.drillHostHelp')}</p>
        <div class="form-actions left">
          <button type="submit" class="btn btn-primary" data-testid="token-create" disabled={make.busy || !chosen}>
            {t('enrol.create')}
          </button>
        </div>
        <ErrorNote error={make.error} testid="token-error" />
      </form>
      {token ? (
        <div class="result" data-testid="token-result">
          <Note kind="ok">
            {t('enrol.made', {
              department: token.department,
              expires: formatDuration(token.expires_in_seconds, units()),
            })}
            {token.drill_host ? ` ${t('enrol.madeDrillHost')}` : ''}
          </Note>
          <p>{t('enrol.runThis')}</p>
          <CommandLine command={enrolCommand(address, token.token)} testid="token-command" />
          <p class="muted small" data-testid="token-address-note">
            {guessed ? t('enrol.addressGuessed', { address }) : t('enrol.addressFromVault', { address })}
          </p>
          <p class="muted small">{t('enrol.once')}</p>
        </div>
      ) : null}
    </Panel>
  );
}
