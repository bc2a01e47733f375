import { describe, expect, it } from 'vitest';
import {
  compactDuration,
  formatBytes,
  formatDateTimeAt,
  formatDuration,
  formatEta,
  formatOffset,
  formatRate,
  parseBytes,
  parseDuration,
  parseTime,
  percentDone,
} from './format';

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [1, '1 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1536, '1.5 KiB'],
    [10 * 1024, '10.0 KiB'],
    [150 * 1024 * 1024, '150 MiB'],
    [1024 ** 3 * 2.25, '2.3 GiB'],
    [1024 ** 4 * 5, '5.0 TiB'],
    [1024 * 1024 - 1, '1.0 MiB'],
  ])('%d → %s', (n, text) => expect(formatBytes(n)).toBe(text));

  it('says a dash for what is not a size', () => {
    expect(formatBytes(null)).toBe('—');
    expect(formatBytes(undefined)).toBe('—');
    expect(formatBytes(-1)).toBe('—');
    expect(formatBytes(NaN)).toBe('—');
  });
});

describe('formatRate', () => {
  it('is a size per second', () => {
    expect(formatRate(12.5 * 1024 * 1024)).toBe('12.5 MiB/s');
    expect(formatRate(0)).toBe('0 B/s');
    expect(formatRate(null)).toBe('—');
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0 s'],
    [0.42, '0.4 s'],
    [3, '3 s'],
    [9.96, '10 s'],
    [45, '45 s'],
    [59.6, '1 min'],
    [60, '1 min'],
    [303, '5 min 3 s'],
    [3600, '1 h'],
    [7500, '2 h 5 min'],
    [86400, '1 d'],
    [273600, '3 d 4 h'],
    [86400 * 3 + 300, '3 d'],
  ])('%d s → %s', (s, text) => expect(formatDuration(s)).toBe(text));

  it('takes the unit words of the language', () => {
    expect(formatDuration(7500, { d: '天', h: '小时', m: '分钟', s: '秒' })).toBe('2 小时 5 分钟');
  });

  it('says a dash for no duration and never goes negative', () => {
    expect(formatDuration(null)).toBe('—');
    expect(formatDuration(-5)).toBe('0 s');
  });
});

describe('formatEta', () => {
  it('is a duration, or the unknown word when the agent has no estimate', () => {
    expect(formatEta(125, 'unknown')).toBe('2 min 5 s');
    expect(formatEta(null, 'unknown')).toBe('unknown');
    expect(formatEta(undefined, '?')).toBe('?');
    expect(formatEta(-1, '?')).toBe('?');
  });
});

describe('percentDone', () => {
  it('is null until the total is known, and stays within 0..100', () => {
    expect(percentDone(50, null)).toBeNull();
    expect(percentDone(50, 0)).toBeNull();
    expect(percentDone(50, 200)).toBe(25);
    expect(percentDone(300, 200)).toBe(100);
  });
});

describe('times', () => {
  it('formats the offset', () => {
    expect(formatOffset(480)).toBe('+08:00');
    expect(formatOffset(-330)).toBe('-05:30');
    expect(formatOffset(0)).toBe('+00:00');
  });

  it('shows a UTC time in local time with its offset', () => {
    const d = new Date('2026-12-02T09:30:05Z');
    expect(formatDateTimeAt(d, 480)).toBe('2026-12-02 17:30:05 UTC+08:00');
    expect(formatDateTimeAt(d, 0)).toBe('2026-12-02 09:30:05 UTC+00:00');
    expect(formatDateTimeAt(d, -600)).toBe('2026-12-01 23:30:05 UTC-10:00');
  });

  it('reads RFC 3339 and microseconds; the vault\'s unset time is no time', () => {
    expect(parseTime('2026-12-02T09:30:00.123Z')?.toISOString()).toBe('2026-12-02T09:30:00.123Z');
    expect(parseTime(1_796_203_800_000_000)?.toISOString()).toBe('2026-12-02T09:30:00.000Z');
    expect(parseTime('1970-01-01T00:00:00Z')).toBeNull();
    expect(parseTime('')).toBeNull();
    expect(parseTime('yesterday')).toBeNull();
  });
});

describe('parseDuration and compactDuration', () => {
  it.each([
    ['90', 90],
    ['45s', 45],
    ['15m', 900],
    ['4h', 14400],
    ['30d', 2592000],
    ['2w', 1209600],
    ['1d 12h', 129600],
    ['1h30m', 5400],
    [' 4H ', 14400],
  ])('%s → %d', (text, s) => expect(parseDuration(text)).toBe(s));

  it('refuses what is not a duration', () => {
    for (const text of ['', 'four hours', '4x', '-4h', '4h x', '1.5h']) expect(parseDuration(text)).toBeNull();
  });

  it('writes durations back in a form parseDuration reads', () => {
    for (const s of [0, 45, 900, 5400, 14400, 86400 * 30 + 7]) {
      const text = compactDuration(s);
      expect(parseDuration(text)).toBe(s);
    }
    expect(compactDuration(5400)).toBe('1h30m');
  });
});

describe('parseBytes', () => {
  it('reads binary units', () => {
    expect(parseBytes('1048576')).toBe(1048576);
    expect(parseBytes('512K')).toBe(524288);
    expect(parseBytes('50M')).toBe(52428800);
    expect(parseBytes('1 GiB')).toBe(1073741824);
    expect(parseBytes('1.5m')).toBe(1572864);
    expect(parseBytes('fast')).toBeNull();
    expect(parseBytes('')).toBeNull();
  });
});
