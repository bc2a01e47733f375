import { describe, expect, it } from 'vitest';
import type { Policy } from '../api/types';
import { changedFields, draftFromPolicy, draftFromTemplate, emptyPolicy, parseDraft, retentionParts } from './policy';

describe('policy form', () => {
  it('starts from a template\'s values', () => {
    const d = draftFromTemplate('finance-db', 'level3');
    expect(d.template).toBe('level3');
    expect(d.schedule).toBe('daily');
    expect(d.keep_daily).toBe('14');
    expect(d.keep_monthly).toBe('12');
    expect(d.offsite).toBe(true);
    expect(d.lock).toBe('7d');
    expect(d.rto).toBe('8h');
  });

  it('sends only what a person changed from the template', () => {
    const base = parseDraft(draftFromTemplate('', 'level4')).fields;
    const d = { ...draftFromTemplate('fin', 'level4'), keep_daily: '30', drill_check: 'test -s db' };
    expect(changedFields(base, parseDraft(d).fields)).toEqual({ keep_daily: 30, drill_check: 'test -s db' });
  });

  it('reads durations and sizes as people type them', () => {
    const d = { ...draftFromTemplate('p', ''), rpo: '4h', rto: '90m', drill_every: '30d', lock: '', bandwidth: '50M' };
    const { fields, errors } = parseDraft(d);
    expect(errors).toEqual({});
    expect(fields.rpo_seconds).toBe(14400);
    expect(fields.rto_seconds).toBe(5400);
    expect(fields.drill_every_seconds).toBe(2592000);
    expect(fields.lock_seconds).toBe(0);
    expect(fields.bandwidth_bytes_per_second).toBe(52428800);
  });

  it('names the fields that do not parse', () => {
    const d = { ...draftFromTemplate('p', ''), rpo: 'soon', keep_daily: 'seven', bandwidth: 'fast' };
    expect(parseDraft(d).errors).toEqual({ rpo: 'duration', keep_daily: 'number', bandwidth: 'bytes' });
  });

  it('round-trips an existing policy: editing nothing changes nothing', () => {
    const p: Policy = {
      ...emptyPolicy,
      name: 'x',
      schedule: 'every 4h',
      keep_daily: 14,
      rpo_seconds: 14400,
      rto_seconds: 5400,
      lock_seconds: 30 * 86400,
      bandwidth_bytes_per_second: 3 * 1024 * 1024,
      drill_check_timeout_seconds: 600,
    };
    const fields = parseDraft(draftFromPolicy(p)).fields;
    expect(changedFields(fields, parseDraft(draftFromPolicy(p)).fields)).toEqual({});
    expect(fields.bandwidth_bytes_per_second).toBe(p.bandwidth_bytes_per_second);
    expect(fields.lock_seconds).toBe(p.lock_seconds);
    expect(fields.rto_seconds).toBe(5400);
  });

  it('summarises retention', () => {
    expect(retentionParts({ ...emptyPolicy, keep_daily: 7, keep_weekly: 4 })).toEqual([
      [7, 'daily'],
      [4, 'weekly'],
    ]);
    expect(retentionParts(emptyPolicy)).toEqual([]);
  });
});

describe('point-in-time methods', () => {
  it('offers btrfs to files sources and reflink or lvm to image sources, as the vault checks', async () => {
    const { pitFits, pitMethods } = await import('./policy');
    expect(pitMethods.filter((m) => pitFits(m, 'paths'))).toEqual(['auto', 'none', 'btrfs']);
    expect(pitMethods.filter((m) => pitFits(m, 'image'))).toEqual(['auto', 'none', 'reflink', 'lvm']);
    expect(pitFits('zfs', 'paths')).toBe(false);
  });
});
