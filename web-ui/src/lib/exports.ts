// Rows of the auditors' exports: the compliance table and the drill
// history as CSV (one header row, then one row a source or drill) and JSON.
import type { ComplianceRow, SignedDrillReport } from '../api/types';
import { toCsv, type Cell } from './csv';

export const complianceColumns = [
  'department',
  'source',
  'host',
  'paths',
  'policy',
  'rpo_seconds',
  'rpo_achieved_seconds',
  'rpo_state',
  'newest_good_snapshot',
  'offsite',
  'damaged_snapshots',
  'rto_seconds',
  'last_drill',
  'last_drill_finished',
  'last_drill_ok',
  'last_drill_total_seconds',
  'last_drill_rto_met',
  'last_drill_read_site',
  'drill_every_seconds',
  'drill_fresh',
  'backups_done',
  'backups_failed',
  'backups_missed',
  'backup_success_percent',
  'department_stored_bytes',
  'compliant',
] as const;

export function complianceCsv(rows: ComplianceRow[]): string {
  const data: Cell[][] = rows.map((r) => [
    r.department,
    r.source,
    r.host,
    (r.paths ?? []).join(' '),
    r.policy,
    r.rpo_seconds,
    r.rpo_achieved_seconds,
    r.rpo_state,
    r.newest_good_snapshot,
    r.offsite,
    r.damaged_snapshots,
    r.rto_seconds,
    r.last_drill?.drill,
    r.last_drill?.finished,
    r.last_drill?.ok,
    r.last_drill?.total_seconds,
    r.last_drill?.rto_met,
    r.last_drill?.read_site,
    r.drill_every_seconds,
    r.drill_fresh,
    r.backups?.done,
    r.backups?.failed,
    r.backups?.missed,
    r.backup_success_percent,
    r.department_stored_bytes,
    r.compliant,
  ]);
  return toCsv([...complianceColumns], data);
}

export const drillColumns = [
  'drill',
  'department',
  'snapshot',
  'snapshot_time',
  'snapshot_host',
  'snapshot_paths',
  'drill_host',
  'started',
  'finished',
  'files',
  'bytes',
  'total_seconds',
  'rto_seconds',
  'rto_met',
  'read_site',
  'scheduled',
  'ok',
  'failure',
  'key_sha256',
] as const;

export function drillsCsv(drills: SignedDrillReport[]): string {
  const data: Cell[][] = drills.map(({ report: r, key_sha256 }) => [
    r.drill,
    r.department,
    r.snapshot,
    r.snapshot_time,
    r.snapshot_host,
    (r.snapshot_paths ?? []).join(' '),
    r.drill_host,
    r.started,
    r.finished,
    r.files,
    r.bytes,
    r.millis ? r.millis.total / 1000 : null,
    r.rto_seconds,
    r.rto_met,
    r.read_site,
    r.scheduled ?? false,
    r.ok,
    r.failure,
    key_sha256,
  ]);
  return toCsv([...drillColumns], data);
}

/**
 * A signed drill report as the file `cairn-vault report verify` reads: the
 * object the vault answered, whole (report, signature, key_sha256). The
 * report holds no floating-point numbers, so JSON.parse and JSON.stringify
 * keep every value, and a re-indented report still verifies.
 */
export function signedReportFile(d: SignedDrillReport): string {
  return JSON.stringify({ report: d.report, signature: d.signature, key_sha256: d.key_sha256 }, null, 2) + '\n';
}
