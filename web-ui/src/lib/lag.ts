import type { Replication } from '../api/types';

// The DR lag sampled at each poll, kept in memory for the last hour (the
// console has no history route to ask; a reload starts afresh).

const kWindowSeconds = 3600;
const samples: { t: number; now: number; atPass: number | null }[] = [];

export function addLagSample(t: number, now: number, atPass: number | null): void {
  samples.push({ t, now, atPass });
  while (samples.length && samples[0].t < t - kWindowSeconds) samples.shift();
}

/** Columns for the chart: [times, lag now, lag at the last pass]. */
export function lagSeries(): number[][] {
  return [
    samples.map((s) => s.t),
    samples.map((s) => s.now),
    samples.map((s) => (s.atPass === null ? NaN : s.atPass)),
  ];
}

export function clearLagSamples(): void {
  samples.length = 0;
}

/**
 * The DR copy's lag: as the last pass measured it, and now (that figure
 * plus the time since the pass, as the replication_lag alert reckons it).
 * Null on a primary or before the first pass.
 */
export function replicationLag(r: Replication, nowMs: number = Date.now()): { atPass: number | null; now: number | null } {
  const pass = r.last_pass ?? {};
  if (!r.replica || typeof pass.lag_seconds !== 'number') return { atPass: null, now: null };
  const since = typeof pass.time_micros === 'number' ? Math.max(0, nowMs / 1000 - pass.time_micros / 1e6) : 0;
  return { atPass: pass.lag_seconds, now: pass.lag_seconds + since };
}

