// The policy form's values: what the fields hold (text, as typed), how a
// template prefills them, and what a request sends.
import type { Policy } from '../api/types';
import { compactDuration, parseBytes, parseDuration } from './format';

export const durationFields = ['rpo', 'rto', 'drill_every', 'drill_check_timeout', 'lock'] as const;
export const keepFields = ['keep_last', 'keep_hourly', 'keep_daily', 'keep_weekly', 'keep_monthly', 'keep_yearly'] as const;

export interface PolicyDraft {
  name: string;
  template: string;
  schedule: string;
  keep_last: string;
  keep_hourly: string;
  keep_daily: string;
  keep_weekly: string;
  keep_monthly: string;
  keep_yearly: string;
  zstd_level: string;
  offsite: boolean;
  hook_failure_continue: boolean;
  rpo: string;
  rto: string;
  drill_every: string;
  drill_check: string;
  drill_check_timeout: string;
  lock: string;
  bandwidth: string;
}

/** The request fields of a policy (doc/api.md), from a draft. */
export type PolicyFields = Omit<Policy, 'name' | 'template'>;

/**
 * What a policy made from each template starts with. The API's template
 * list gives only the floors (gap, off-site, lock), not these starting
 * values, so they are copied from vault/policy/policy.cc
 * (ProtectionTemplates) for display. A new policy from a template sends
 * only the fields a person changed: the vault's own template values stay
 * the ones that count.
 */
export const templateDefaults: Record<string, Partial<Policy>> = {
  level2: {
    schedule: 'daily', keep_daily: 7, keep_weekly: 4, offsite: false, lock_seconds: 0,
    rpo_seconds: 86400, rto_seconds: 86400, drill_every_seconds: 0,
  },
  level3: {
    schedule: 'daily', keep_daily: 14, keep_weekly: 8, keep_monthly: 12, offsite: true,
    lock_seconds: 7 * 86400, rpo_seconds: 86400, rto_seconds: 8 * 3600, drill_every_seconds: 90 * 86400,
  },
  level4: {
    schedule: 'every 4h', keep_daily: 14, keep_weekly: 8, keep_monthly: 12, keep_yearly: 7, offsite: true,
    lock_seconds: 30 * 86400, rpo_seconds: 4 * 3600, rto_seconds: 2 * 3600, drill_every_seconds: 30 * 86400,
  },
};

export const emptyPolicy: Policy = {
  name: '',
  template: '',
  schedule: '',
  keep_last: 0,
  keep_hourly: 0,
  keep_daily: 0,
  keep_weekly: 0,
  keep_monthly: 0,
  keep_yearly: 0,
  zstd_level: 3,
  offsite: false,
  rpo_seconds: 0,
  rto_seconds: 0,
  drill_every_seconds: 0,
  drill_check: '',
  drill_check_timeout_seconds: 0,
  hook_failure: 'fail',
  lock_seconds: 0,
  bandwidth_bytes_per_second: 0,
};

function dur(seconds: number): string {
  return seconds ? compactDuration(seconds) : '';
}

function bytes(n: number): string {
  if (!n) return '';
  for (const [unit, size] of [['G', 1024 ** 3], ['M', 1024 ** 2], ['K', 1024]] as const) {
    if (n % size === 0) return `${n / size}${unit}`;
  }
  return String(n);
}

export function draftFromPolicy(p: Policy): PolicyDraft {
  return {
    name: p.name,
    template: p.template,
    schedule: p.schedule,
    keep_last: String(p.keep_last),
    keep_hourly: String(p.keep_hourly),
    keep_daily: String(p.keep_daily),
    keep_weekly: String(p.keep_weekly),
    keep_monthly: String(p.keep_monthly),
    keep_yearly: String(p.keep_yearly),
    zstd_level: String(p.zstd_level),
    offsite: p.offsite,
    hook_failure_continue: p.hook_failure === 'continue',
    rpo: dur(p.rpo_seconds),
    rto: dur(p.rto_seconds),
    drill_every: dur(p.drill_every_seconds),
    drill_check: p.drill_check,
    drill_check_timeout: dur(p.drill_check_timeout_seconds),
    lock: dur(p.lock_seconds),
    bandwidth: bytes(p.bandwidth_bytes_per_second),
  };
}

/** A draft for a new policy from a template ("" for none). */
export function draftFromTemplate(name: string, template: string): PolicyDraft {
  return draftFromPolicy({ ...emptyPolicy, ...(templateDefaults[template] ?? {}), name, template });
}

export type DraftErrors = Partial<Record<keyof PolicyDraft, 'number' | 'duration' | 'bytes' | 'required'>>;

/** The draft as API fields, or the fields that do not parse. */
export function parseDraft(d: PolicyDraft): { fields: PolicyFields; errors: DraftErrors } {
  const errors: DraftErrors = {};
  const count = (key: keyof PolicyDraft): number => {
    const text = String(d[key]).trim();
    if (text === '') return 0;
    if (!/^\d+$/.test(text)) {
      errors[key] = 'number';
      return 0;
    }
    return Number(text);
  };
  const seconds = (key: keyof PolicyDraft): number => {
    const text = String(d[key]).trim();
    if (text === '' || text === '0') return 0;
    const v = parseDuration(text);
    if (v === null) {
      errors[key] = 'duration';
      return 0;
    }
    return v;
  };
  const bw = d.bandwidth.trim() === '' ? 0 : parseBytes(d.bandwidth);
  if (bw === null) errors.bandwidth = 'bytes';
  const fields: PolicyFields = {
    schedule: d.schedule.trim(),
    keep_last: count('keep_last'),
    keep_hourly: count('keep_hourly'),
    keep_daily: count('keep_daily'),
    keep_weekly: count('keep_weekly'),
    keep_monthly: count('keep_monthly'),
    keep_yearly: count('keep_yearly'),
    zstd_level: d.zstd_level.trim() === '' ? 3 : count('zstd_level'),
    offsite: d.offsite,
    rpo_seconds: seconds('rpo'),
    rto_seconds: seconds('rto'),
    drill_every_seconds: seconds('drill_every'),
    drill_check: d.drill_check,
    drill_check_timeout_seconds: seconds('drill_check_timeout'),
    hook_failure: d.hook_failure_continue ? 'continue' : 'fail',
    lock_seconds: seconds('lock'),
    bandwidth_bytes_per_second: bw ?? 0,
  };
  return { fields, errors };
}

/** The fields of `next` that differ from `base`: what a PATCH (or a templated POST) sends. */
export function changedFields(base: PolicyFields, next: PolicyFields): Partial<PolicyFields> {
  const out: Partial<PolicyFields> = {};
  for (const key of Object.keys(next) as (keyof PolicyFields)[]) {
    if (next[key] !== base[key]) (out as Record<string, unknown>)[key] = next[key];
  }
  return out;
}

/** A short retention summary: "7 daily, 4 weekly" style parts, as [count, unit] pairs. */
export function retentionParts(p: Policy): [number, 'last' | 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly'][] {
  const parts: [number, 'last' | 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly'][] = [];
  if (p.keep_last) parts.push([p.keep_last, 'last']);
  if (p.keep_hourly) parts.push([p.keep_hourly, 'hourly']);
  if (p.keep_daily) parts.push([p.keep_daily, 'daily']);
  if (p.keep_weekly) parts.push([p.keep_weekly, 'weekly']);
  if (p.keep_monthly) parts.push([p.keep_monthly, 'monthly']);
  if (p.keep_yearly) parts.push([p.keep_yearly, 'yearly']);
  return parts;
}

/** The point-in-time methods a source may name (doc/design.md section 24). */
export const pitMethods = ['auto', 'none', 'btrfs', 'reflink', 'lvm'] as const;

/** Whether point-in-time method `m` applies to a source of `kind`, as the vault checks. */
export function pitFits(m: string, kind: 'paths' | 'image'): boolean {
  if (m === 'auto' || m === 'none') return true;
  return kind === 'paths' ? m === 'btrfs' : m === 'reflink' || m === 'lvm';
}
