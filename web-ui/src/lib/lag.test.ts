import { beforeEach, describe, expect, it } from 'vitest';
import type { Replication } from '../api/types';
import { addLagSample, clearLagSamples, lagSeries, replicationLag } from './lag';
import { filterJobs, jobSeconds } from './jobs';
import { departmentOf, protectionClass } from './status';
import type { Job } from '../api/types';

const dr = (pass: Replication['last_pass'], replica = true): Replication => ({
  site: 'dr',
  replica,
  replica_of: 'abcd',
  promoted: false,
  promoted_record: '',
  agent_addresses: [],
  last_pass: pass,
});

describe('replication lag', () => {
  it('adds the time since the last pass, as the alert does', () => {
    const pass = { lag_seconds: 120, time_micros: 1_000_000 * 1_000_000, pending: 2 };
    expect(replicationLag(dr(pass), 1_000_000 * 1000 + 30_000)).toEqual({ atPass: 120, now: 150 });
  });

  it('is unknown on a primary and before the first pass', () => {
    expect(replicationLag(dr({ lag_seconds: 5 }, false))).toEqual({ atPass: null, now: null });
    expect(replicationLag(dr({}))).toEqual({ atPass: null, now: null });
  });

  beforeEach(() => clearLagSamples());

  it('keeps the last hour of samples', () => {
    addLagSample(1000, 10, 5);
    addLagSample(2000, 20, null);
    addLagSample(4700, 30, 25);
    const [t, now, pass] = lagSeries();
    expect(t).toEqual([2000, 4700]);
    expect(now).toEqual([20, 30]);
    expect(Number.isNaN(pass[0])).toBe(true);
    expect(pass[1]).toBe(25);
  });
});

const job = (over: Partial<Job>): Job => ({
  job: 1,
  state: 'done',
  department: 'finance',
  host: 'db',
  agent_serial: 's',
  paths: [],
  image: false,
  created: '2026-12-01T00:00:00Z',
  sent: '2026-12-01T00:00:10Z',
  finished: '2026-12-01T00:01:10Z',
  kind: 'backup',
  ...over,
});

describe('jobs', () => {
  it('filter by state, department and kind', () => {
    const jobs = [
      job({ job: 1 }),
      job({ job: 2, state: 'failed' }),
      job({ job: 3, department: 'health' }),
      job({ job: 4, kind: 'drill' }),
    ];
    expect(filterJobs(jobs, { state: '', department: '', kind: '' }).map((j) => j.job)).toEqual([1, 2, 3, 4]);
    expect(filterJobs(jobs, { state: 'failed', department: '', kind: '' }).map((j) => j.job)).toEqual([2]);
    expect(filterJobs(jobs, { state: '', department: 'health', kind: '' }).map((j) => j.job)).toEqual([3]);
    expect(filterJobs(jobs, { state: 'done', department: 'finance', kind: 'drill' }).map((j) => j.job)).toEqual([4]);
  });

  it('take their time from their stats, else from sent to finished', () => {
    expect(jobSeconds(job({}))).toBe(60);
    expect(jobSeconds(job({ stats: { files: 1, bytes: 1, new_bytes: 1, stored_bytes: 1, warnings: 0, seconds: 42.5 } }))).toBe(42.5);
    expect(jobSeconds(job({ state: 'queued', finished: '1970-01-01T00:00:00Z' }))).toBeNull();
  });
});

describe('status words', () => {
  it('map the vault\'s RPO states', () => {
    expect(protectionClass('met')).toBe('protected');
    expect(protectionClass('at risk')).toBe('atRisk');
    expect(protectionClass('breached')).toBe('breached');
    expect(protectionClass('pending')).toBe('pending');
    expect(protectionClass('no RPO')).toBe('noRpo');
  });

  it('find the department in status list entries', () => {
    expect(departmentOf('finance/db-01')).toBe('finance');
    expect(departmentOf('health web-01 /srv ...')).toBe('health');
  });
});
