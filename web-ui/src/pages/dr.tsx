import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import type { Replication } from '../api/types';
import { TimeChart } from '../components/chart';
import { Badge, ConfirmDialog, LoadState, Note, Panel, TableWrap, Time } from '../components/ui';
import { useApp, useCan } from '../context';
import { t, units } from '../i18n';
import { formatBytes, formatDuration } from '../lib/format';
import { useResource } from '../lib/hooks';
import { addLagSample, lagSeries, replicationLag } from '../lib/lag';

export function DrPage() {
  const { api } = useApp();
  const mayFailover = useCan('dr.failover');
  const [samples, setSamples] = useState(() => lagSeries());
  const rep = useResource(
    async () => {
      const r = await api.get<Replication>('/replication');
      const lag = replicationLag(r);
      if (lag.now !== null) {
        addLagSample(Date.now() / 1000, lag.now, lag.atPass);
        setSamples(lagSeries());
      }
      return r;
    },
    [],
    10000,
  );
  const [dialog, setDialog] = useState<'promote' | 'demote' | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const r = rep.data;
  const lag = r ? replicationLag(r) : { atPass: null, now: null };
  const pass = r?.last_pass ?? {};

  return (
    <div class="page" data-testid="dr-page">
      <LoadState loading={rep.loading} error={rep.error} hasData={!!r} />
      {r ? (
        <>
          <Panel title={t('dr.statusTitle')} testid="dr-status">
            <dl class="facts">
              <dt>{t('dr.site')}</dt>
              <dd data-testid="dr-site">{r.site}</dd>
              <dt>{t('dr.role')}</dt>
              <dd data-testid="dr-role">
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
                  <dt>{t('dr.replicaOf')}</dt>
                  <dd>
                    <code>{r.replica_of}</code>
                  </dd>
                </>
              ) : null}
              <dt>{t('dr.promoted')}</dt>
              <dd data-testid="dr-promoted">
                {r.promoted ? <Badge tone="warn">{t('common.yes')}</Badge> : <span>{t('common.no')}</span>}
                {r.promoted_record ? <PromotionRecord line={r.promoted_record} /> : null}
              </dd>
              <dt>{t('dr.agentAddresses')}</dt>
              <dd>
                {r.agent_addresses.length ? (
                  r.agent_addresses.map((a) => (
                    <div key={a}>
                      <code>{a}</code>
                    </div>
                  ))
                ) : (
                  <span class="muted">{t('dr.noAddresses')}</span>
                )}
              </dd>
            </dl>
            {mayFailover ? (
              <div class="failover">
                <h3>{t('dr.failoverTitle')}</h3>
                <p class="muted">{r.replica ? (r.promoted ? t('dr.demoteHelp') : t('dr.promoteHelp')) : t('dr.primaryHelp')}</p>
                <div class="form-actions left">
                  <button
                    type="button"
                    class="btn btn-danger"
                    data-testid="promote-button"
                    disabled={!r.replica || r.promoted}
                    onClick={() => setDialog('promote')}
                  >
                    {t('dr.promote')}
                  </button>
                  <button
                    type="button"
                    class="btn"
                    data-testid="demote-button"
                    disabled={!r.promoted}
                    onClick={() => setDialog('demote')}
                  >
                    {t('dr.demote')}
                  </button>
                </div>
                {done ? (
                  <Note kind="ok" testid="dr-result">
                    {done}
                  </Note>
                ) : null}
              </div>
            ) : null}
          </Panel>

          <Panel title={t('dr.lagTitle')} testid="dr-lag">
            {r.replica ? (
              <>
                <div class="tiles">
                  <div class="tile tile-neutral" data-testid="dr-lag-now">
                    <div class="tile-value">{lag.now === null ? '—' : formatDuration(lag.now, units())}</div>
                    <div class="tile-label">{t('dr.lagNow')}</div>
                  </div>
                  <div class="tile tile-neutral" data-testid="dr-lag-pass">
                    <div class="tile-value">{lag.atPass === null ? '—' : formatDuration(lag.atPass, units())}</div>
                    <div class="tile-label">{t('dr.lagAtPass')}</div>
                  </div>
                  <div class={`tile ${(pass.pending ?? 0) > 0 ? 'tile-warn' : 'tile-ok'}`} data-testid="dr-pending">
                    <div class="tile-value">{pass.pending ?? '—'}</div>
                    <div class="tile-label">{t('dr.pending')}</div>
                  </div>
                </div>
                <p class="muted small">{t('dr.lagExplain')}</p>
                {samples[0].length > 0 ? (
                  <TimeChart
                    testid="dr-lag-chart"
                    label={t('dr.chartLabel')}
                    xLabel={t('dr.chartTime')}
                    data={samples}
                    series={[
                      { label: t('dr.lagNow'), stroke: '#1f5fa8' },
                      { label: t('dr.lagAtPass'), stroke: '#8a6d00', dash: [6, 4] },
                    ]}
                    formatValue={(v) => formatDuration(v, units())}
                  />
                ) : (
                  <p class="muted">{t('dr.chartEmpty')}</p>
                )}
                <p class="muted small">{t('dr.chartNote')}</p>
                <h3>{t('dr.lastPass')}</h3>
                <PassTable pass={pass} />
                <p class="muted small">{t('dr.pendingNote')}</p>
              </>
            ) : (
              <Note>{t('dr.primaryNoLag')}</Note>
            )}
          </Panel>
        </>
      ) : null}
      {dialog === 'promote' && r ? (
        <ConfirmDialog
          title={t('dr.promoteTitle')}
          danger
          requireReason
          confirmLabel={t('dr.promoteConfirm')}
          consequence={
            <>
              <p>
                <strong>{t('dr.promoteConsequence1', { site: r.site })}</strong>
              </p>
              <p>{t('dr.promoteConsequence2')}</p>
              <p>{t('dr.promoteConsequence3')}</p>
            </>
          }
          onConfirm={async (reason) => {
            const a = await api.post<{ promoted: boolean; already: boolean }>('/promote', { reason });
            setDone(a.already ? t('dr.alreadyPromoted') : t('dr.promotedDone'));
            await rep.reload();
          }}
          onClose={() => setDialog(null)}
        />
      ) : null}
      {dialog === 'demote' && r ? (
        <ConfirmDialog
          title={t('dr.demoteTitle')}
          requireReason
          confirmLabel={t('dr.demoteConfirm')}
          consequence={
            <>
              <p>
                <strong>{t('dr.demoteConsequence1', { site: r.site })}</strong>
              </p>
              <p>{t('dr.demoteConsequence2')}</p>
            </>
          }
          onConfirm={async (reason) => {
            await api.post('/demote', { reason });
            setDone(t('dr.demotedDone'));
            await rep.reload();
          }}
          onClose={() => setDialog(null)}
        />
      ) : null}
    </div>
  );
}

/** The promotion log line: "<micros> promoted by WHO on HOST: REASON"; the time shown as a time. */
function PromotionRecord({ line }: { line: string }) {
  const m = /^(\d{13,17}) (.*)$/s.exec(line);
  return (
    <div data-testid="dr-promoted-record">
      {m ? (
        <>
          <Time value={Number(m[1])} /> <code class="wrap">{m[2]}</code>
        </>
      ) : (
        <code class="wrap">{line}</code>
      )}
    </div>
  );
}

function PassTable({ pass }: { pass: Replication['last_pass'] }) {
  if (!pass || Object.keys(pass).length === 0) return <p class="muted">{t('dr.noPassYet')}</p>;
  const rows: [string, string | JSX.Element][] = [
    [t('dr.passTime'), <Time value={typeof pass.time_micros === 'number' ? pass.time_micros : null} />],
    [t('dr.passOk'), pass.ok === false ? t('common.no') : t('common.yes')],
    [t('dr.passSnapshots'), String(pass.snapshots ?? '—')],
    [t('dr.pending'), String(pass.pending ?? '—')],
    [t('dr.passBytesReceived'), formatBytes(typeof pass.bytes_received === 'number' ? pass.bytes_received : null)],
    [t('dr.passRecords'), String(pass.records ?? '—')],
    [t('dr.passLastLag'), typeof pass.last_lag_seconds === 'number' ? formatDuration(pass.last_lag_seconds, units()) : '—'],
    [t('dr.passNewestAge'), typeof pass.newest_age_seconds === 'number' ? formatDuration(pass.newest_age_seconds, units()) : '—'],
    [t('dr.passSeconds'), typeof pass.seconds === 'number' ? formatDuration(pass.seconds, units()) : '—'],
    [t('dr.passCursor'), String(pass.cursor ?? '—')],
    [t('dr.passSourceLatest'), String(pass.source_latest ?? '—')],
  ];
  return (
    <TableWrap label={t('dr.lastPass')}>
      <table class="compact kv" data-testid="dr-pass-table">
        <tbody>
          {rows.map(([k, v]) => (
            <tr key={k}>
              <th scope="row">{k}</th>
              <td>{v}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </TableWrap>
  );
}
