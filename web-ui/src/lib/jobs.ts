import type { Job } from '../api/types';
import { parseTime } from './format';

export function isRunning(j: Job): boolean {
  return j.state === 'queued' || j.state === 'sent';
}

/** Seconds a finished job took: its stats, else finished minus sent. */
export function jobSeconds(j: Job): number | null {
  if (j.stats) return j.stats.seconds;
  const a = parseTime(j.sent) ?? parseTime(j.created);
  const b = parseTime(j.finished);
  if (!a || !b || b.getTime() < a.getTime() || b.getTime() === 0) return null;
  return (b.getTime() - a.getTime()) / 1000;
}

/** The catalog key of a job's kind. */
export function jobKindKey(j: Pick<Job, 'kind'>): 'jobs.kind.backup' | 'jobs.kind.drill' | 'jobs.kind.restore' {
  return j.kind === 'drill' ? 'jobs.kind.drill' : j.kind === 'restore' ? 'jobs.kind.restore' : 'jobs.kind.backup';
}

/** The snapshot a drill or a restore reads; null for a backup. */
export function jobReads(j: Job): string | null {
  if (j.kind === 'drill') return j.drill_snapshot || null;
  if (j.kind === 'restore') return j.restore_snapshot || null;
  return null;
}

/** The job filter of the history table. */
export function filterJobs(
  jobs: Job[],
  f: { state: string; department: string; kind: string },
): Job[] {
  return jobs.filter(
    (j) =>
      (!f.state || j.state === f.state) &&
      (!f.department || j.department === f.department) &&
      (!f.kind || j.kind === f.kind),
  );
}

