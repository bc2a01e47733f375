// The shapes doc/api.md gives each route's answer. Fields the console does
// not read are left out; optional ones are marked so.

export type Role = 'admin' | 'operator' | 'dr' | 'auditor';

export interface Me {
  user: string;
  role: Role;
  departments: string[];
  site?: string;
}

export interface LoginAnswer {
  user: string;
  role: Role;
  departments: string[];
  csrf_token: string;
}

export interface Department {
  id: number;
  name: string;
  created: string;
}

export interface EnrolmentToken {
  department: string;
  token: string;
  expires_in_seconds: number;
  drill_host: boolean;
}

export interface Agent {
  serial: string;
  department: string;
  host: string;
  role: 'agent' | 'replicator';
  enrolled: string;
  revoked: boolean;
  drill_host: boolean;
  revoked_at: string | null;
  last_seen: string | null;
}

export interface JobProgress {
  files: number;
  bytes_done: number;
  bytes_total: number | null;
  new_bytes: number;
  elapsed_seconds: number;
  bytes_per_second: number;
  eta_seconds: number | null;
  reported: string;
}

export interface JobStats {
  files: number;
  bytes: number;
  new_bytes: number;
  stored_bytes: number;
  warnings: number;
  seconds: number;
}

export type JobState = 'queued' | 'sent' | 'done' | 'failed' | 'missed';

export interface Job {
  job: number;
  state: JobState | string;
  department: string;
  host: string;
  agent_serial: string;
  paths: string[];
  image: boolean;
  created: string;
  sent: string;
  finished: string;
  snapshot?: string;
  error?: string;
  source?: number;
  kind: 'backup' | 'drill' | 'restore';
  drill_snapshot?: string;
  restore_snapshot?: string;
  restore_target?: string;
  /** A finished backup's consistency log: the view (or why none), the hooks' exit and output. */
  log?: string;
  stats?: JobStats;
  progress?: JobProgress;
}

export interface Snapshot {
  id: string;
  short_id: string;
  host: string;
  paths: string[];
  kind: 'files' | 'image' | string;
  time: string;
  started?: string;
  finished?: string;
  files: number;
  dirs?: number;
  bytes: number;
  new_bytes: number;
  new_chunks?: number;
  warnings?: number;
  department: string;
  chunks: number;
  locked_until: string | null;
  damaged: string | null;
  /** The point-in-time view the agent read; null: read live. */
  point_in_time?: { method: string; taken: string } | null;
}

/**
 * One entry of a snapshot's directory (GET .../snapshots/{s}/tree). `user`
 * and `group` are names, or the numeric IDs when the host had no name.
 */
export interface TreeEntry {
  name: string;
  type: 'file' | 'dir' | 'symlink' | 'hardlink' | 'image' | string;
  mode: number;
  user: string | number;
  group: string | number;
  mtime: string;
  size?: number;
  target?: string;
  link_path?: string;
}

export interface TreeListing {
  department: string;
  snapshot: string;
  path: string;
  entries: TreeEntry[];
  truncated: boolean;
}

export interface Policy {
  name: string;
  template: string;
  schedule: string;
  keep_last: number;
  keep_hourly: number;
  keep_daily: number;
  keep_weekly: number;
  keep_monthly: number;
  keep_yearly: number;
  zstd_level: number;
  offsite: boolean;
  rpo_seconds: number;
  rto_seconds: number;
  drill_every_seconds: number;
  drill_check: string;
  drill_check_timeout_seconds: number;
  /** A source's failed pre-command: 'fail' (default) or 'continue' crash-consistent. */
  hook_failure?: 'fail' | 'continue';
  lock_seconds: number;
  bandwidth_bytes_per_second: number;
}

export interface PolicyTemplate {
  name: string;
  description: string;
  max_gap_seconds: number;
  offsite_required: boolean;
  min_lock_seconds: number;
}

export interface Source {
  source: number;
  department: string;
  host: string;
  policy: string;
  paths: string[];
  excludes: string[];
  image: boolean;
  /** How the agent reads it: auto, none, btrfs, reflink, lvm. */
  point_in_time?: string;
  pre_command?: string;
  post_command?: string;
  hook_timeout_seconds?: number;
  created: string;
  last_job?: number | null;
}

export type RpoState = 'met' | 'pending' | 'at risk' | 'breached' | 'no RPO';

export interface SourceStatus {
  source: number;
  department: string;
  host: string;
  paths: string[];
  image: boolean;
  policy: string;
  rpo_seconds: number;
  last_good_snapshot: string | null;
  last_good: string | null;
  age_seconds?: number | null;
  snapshots: number;
  damaged_snapshots: number;
  rpo: RpoState | string;
  next_run: string | null;
  offsite: string;
  last_failure: string | null;
  last_failure_time: string | null;
  running_job?: number | null;
}

export interface StatusReport {
  time: string;
  sources: SourceStatus[];
  unprotected_series: string[];
  agents_without_source: string[];
  agents_unseen: string[];
}

export interface ReplicationPass {
  ok?: boolean;
  snapshots?: number;
  records?: number;
  bytes?: number;
  bytes_received?: number;
  chunks_present?: number;
  cursor?: string | number;
  source_latest?: string | number;
  pending?: number;
  lag_seconds?: number;
  last_lag_seconds?: number | null;
  newest_age_seconds?: number | null;
  seconds?: number;
  time_micros?: number;
  [key: string]: unknown;
}

export interface Replication {
  site: string;
  replica: boolean;
  replica_of: string;
  promoted: boolean;
  promoted_record: string;
  agent_addresses: string[];
  last_pass: ReplicationPass;
}

export interface Alert {
  alert: number;
  key: string;
  rule: string;
  severity: 'warning' | 'critical' | string;
  department: string;
  summary: string;
  firing: boolean;
  fired: string;
  resolved: string | null;
}

export interface StorageRun {
  time?: string;
  by?: string;
  [key: string]: unknown;
}

export interface StorageReport {
  departments: { department: string; packs: number; unique_bytes: number }[];
  gc_last: StorageRun | null;
  gc_dry_run_last: StorageRun | null;
  scrub_last: StorageRun | null;
}

export interface DrillReportBody {
  version: number;
  drill: number;
  vault_site: string;
  department: string;
  snapshot: string;
  snapshot_time: string;
  snapshot_host: string;
  snapshot_paths: string[];
  snapshot_image?: boolean;
  drill_host: string;
  drill_agent?: string;
  started: string;
  finished: string;
  files: number;
  bytes: number;
  millis: { first_byte?: number; restored?: number; verified?: number; checked?: number; total: number };
  rto_seconds: number | null;
  rto_source?: string | null;
  rto_met: boolean | null;
  read_site: string;
  served_by?: string;
  scheduled?: boolean;
  job?: number | null;
  source?: number | null;
  ok: boolean;
  failure: string;
  [key: string]: unknown;
}

export interface SignedDrillReport {
  report: DrillReportBody;
  signature: string;
  key_sha256: string;
}

export interface ComplianceRow {
  department: string;
  source: number;
  host: string;
  paths: string[];
  image: boolean;
  policy: string;
  rpo_seconds: number;
  newest_good_snapshot: string | null;
  rpo_achieved_seconds: number | null;
  rpo_state: string;
  offsite: string;
  damaged_snapshots: number;
  rto_seconds: number;
  last_drill: {
    drill: number;
    finished: string;
    ok: boolean;
    total_seconds: number;
    rto_met: boolean | null;
    read_site: string | null;
  } | null;
  drill_every_seconds: number;
  drill_fresh: boolean | null;
  backups: { done: number; failed: number; missed: number };
  scheduled_drills?: { done: number; failed: number; missed: number; last_missed_reason?: string | null };
  backup_success_percent: number | null;
  department_stored_bytes: number;
  compliant: boolean;
}

export interface Compliance {
  time: string;
  from: string;
  to: string;
  sources: ComplianceRow[];
}

export interface AuditEntry {
  seq: number;
  time: string;
  time_micros: number;
  actor: string;
  address: string;
  action: string;
  department: string;
  object: string;
  details: Record<string, unknown>;
  prev: string;
  hash: string;
}

export interface AuditVerification {
  ok: boolean;
  entries: number;
  checkpoints: number;
  last_checkpoint: number;
  first_broken?: { seq: number; reason: string };
}

export interface User {
  user: string;
  role: Role;
  departments: string[];
  disabled: boolean;
  created: string;
}
