import { describe, expect, it } from 'vitest';
import type { Job } from '../api/types';
import { filterJobs, isRunning, jobKindKey, jobReads, jobSeconds } from './jobs';

function job(over: Partial<Job>): Job {
  return {
    job: 1,
    state: 'done',
    department: 'finance',
    host: 'fin-app',
    agent_serial: 'a1',
    paths: ['/srv'],
    image: false,
    created: '2026-12-01T10:00:00Z',
    sent: '2026-12-01T10:00:05Z',
    finished: '2026-12-01T10:01:05Z',
    kind: 'backup',
    ...over,
  } as Job;
}

describe('jobs', () => {
  it('names each kind from the catalog', () => {
    expect(jobKindKey(job({ kind: 'backup' }))).toBe('jobs.kind.backup');
    expect(jobKindKey(job({ kind: 'drill' }))).toBe('jobs.kind.drill');
    expect(jobKindKey(job({ kind: 'restore' }))).toBe('jobs.kind.restore');
  });

  it('knows which snapshot a drill or a restore reads, and that a backup reads none', () => {
    expect(jobReads(job({ kind: 'backup', drill_snapshot: 'abc' }))).toBeNull();
    expect(jobReads(job({ kind: 'drill', drill_snapshot: 'd1' }))).toBe('d1');
    expect(jobReads(job({ kind: 'restore', restore_snapshot: 'r1', restore_target: '/srv/r' }))).toBe('r1');
    expect(jobReads(job({ kind: 'restore' }))).toBeNull();
  });

  it('filters the history by kind, restores included', () => {
    const all = [job({ job: 1 }), job({ job: 2, kind: 'restore' }), job({ job: 3, kind: 'drill', state: 'failed' })];
    expect(filterJobs(all, { state: '', department: '', kind: 'restore' }).map((j) => j.job)).toEqual([2]);
    expect(filterJobs(all, { state: 'failed', department: '', kind: '' }).map((j) => j.job)).toEqual([3]);
  });

  it('times a finished job from sent to finished, and a running one not at all', () => {
    expect(jobSeconds(job({}))).toBe(60);
    expect(isRunning(job({ state: 'sent' }))).toBe(true);
    expect(isRunning(job({ state: 'done' }))).toBe(false);
  });
});
