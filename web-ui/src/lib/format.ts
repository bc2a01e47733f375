// Formatting of sizes, rates, durations and times for people.
//
// Sizes use binary units (KiB, MiB, ...), as the vault's own commands do.
// Durations take their unit words from the caller (the message catalogs),
// so that they read naturally in each language; the defaults are English.

export interface DurationUnits {
  d: string;
  h: string;
  m: string;
  s: string;
}

export const englishUnits: DurationUnits = { d: 'd', h: 'h', m: 'min', s: 's' };

const byteUnits = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];

/** 0 → "0 B", 1536 → "1.5 KiB", 157286400 → "150 MiB". Null/invalid → "—". */
export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n) || n < 0) return '—';
  if (n < 1024) return `${Math.round(n)} B`;
  let v = n;
  let i = 0;
  while (v >= 1024 && i < byteUnits.length - 1) {
    v /= 1024;
    i++;
  }
  // Keep three significant figures at most: 1.5, 15.2, 152.
  const text = v >= 100 ? Math.round(v).toString() : (Math.round(v * 10) / 10).toFixed(1);
  // Rounding may reach 1024 of a unit (1023.96 KiB): say the next unit.
  if (text === '1024' && i < byteUnits.length - 1) return `1.0 ${byteUnits[i + 1]}`;
  return `${text} ${byteUnits[i]}`;
}

/** Bytes per second: "12.5 MiB/s". */
export function formatRate(bytesPerSecond: number | null | undefined): string {
  if (bytesPerSecond === null || bytesPerSecond === undefined || !Number.isFinite(bytesPerSecond)) {
    return '—';
  }
  return `${formatBytes(bytesPerSecond)}/s`;
}

/**
 * A duration in its two largest units: 0.42 → "0.4 s", 45 → "45 s", 303 → "5 min 3 s",
 * 7500 → "2 h 5 min", 273600 → "3 d 4 h". Zero is "0 s".
 */
export function formatDuration(
  seconds: number | null | undefined,
  units: DurationUnits = englishUnits,
): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
  // Under ten seconds a tenth counts (a quick job is not "0 s").
  if (seconds < 9.95) return `${Math.max(0, Math.round(seconds * 10) / 10)} ${units.s}`;
  const total = Math.round(seconds);
  if (total < 60) return `${total} ${units.s}`;
  const values = [
    Math.floor(total / 86400),
    Math.floor((total % 86400) / 3600),
    Math.floor((total % 3600) / 60),
    total % 60,
  ];
  const names = [units.d, units.h, units.m, units.s];
  const first = values.findIndex((v) => v > 0);
  const out = [`${values[first]} ${names[first]}`];
  if (first + 1 < values.length && values[first + 1] > 0) {
    out.push(`${values[first + 1]} ${names[first + 1]}`);
  }
  return out.join(' ');
}

/** An ETA: null (not known yet) gives `unknown`. */
export function formatEta(
  seconds: number | null | undefined,
  unknown: string,
  units: DurationUnits = englishUnits,
): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) {
    return unknown;
  }
  return formatDuration(seconds, units);
}

/**
 * The share done, 0..100, or null when the total is not known yet.
 */
export function percentDone(done: number, total: number | null | undefined): number | null {
  if (total === null || total === undefined || total <= 0) return null;
  return Math.max(0, Math.min(100, (done / total) * 100));
}

function pad(n: number, width = 2): string {
  return n.toString().padStart(width, '0');
}

/** "+08:00", "-05:30", "+00:00" for an offset east of UTC in minutes. */
export function formatOffset(offsetMinutes: number): string {
  const sign = offsetMinutes < 0 ? '-' : '+';
  const a = Math.abs(offsetMinutes);
  return `${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

/**
 * A time as "2026-12-02 17:30:05 UTC+08:00" at the given offset (minutes
 * east of UTC). Pure: tests pass the offset; the UI passes the browser's.
 */
export function formatDateTimeAt(date: Date, offsetMinutes: number): string {
  const shifted = new Date(date.getTime() + offsetMinutes * 60000);
  const ymd = `${shifted.getUTCFullYear()}-${pad(shifted.getUTCMonth() + 1)}-${pad(shifted.getUTCDate())}`;
  const hms = `${pad(shifted.getUTCHours())}:${pad(shifted.getUTCMinutes())}:${pad(shifted.getUTCSeconds())}`;
  return `${ymd} ${hms} UTC${formatOffset(offsetMinutes)}`;
}

/** Parses an RFC 3339 time (or microseconds since 1970); null when absent, unset or invalid. */
export function parseTime(value: string | number | null | undefined): Date | null {
  if (value === null || value === undefined || value === '') return null;
  const d = typeof value === 'number' ? new Date(value / 1000) : new Date(value);
  // The vault prints an unset time (0) as 1970-01-01T00:00:00Z: absent.
  return Number.isNaN(d.getTime()) || d.getTime() <= 0 ? null : d;
}

/** An API time in the browser's local time, with its UTC offset. */
export function formatDateTime(value: string | number | null | undefined): string {
  const d = parseTime(value);
  if (!d) return '—';
  return formatDateTimeAt(d, -d.getTimezoneOffset());
}

/** Seconds from `value` to `now` (positive in the past). */
export function ageSeconds(value: string | null | undefined, now: Date = new Date()): number | null {
  const d = parseTime(value);
  return d ? (now.getTime() - d.getTime()) / 1000 : null;
}

/**
 * Parses a duration as people type it: "90" (seconds), "45s", "15m",
 * "4h", "30d", "2w", "1d 12h", "1h30m". Returns seconds, or null when the
 * text is not a duration. An empty text is null.
 */
export function parseDuration(text: string): number | null {
  const s = text.trim().toLowerCase();
  if (s === '') return null;
  if (/^\d+$/.test(s)) return Number(s);
  const re = /(\d+)\s*(s|sec|m|min|h|d|w)\s*/gy;
  const factor: Record<string, number> = { s: 1, sec: 1, m: 60, min: 60, h: 3600, d: 86400, w: 604800 };
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) {
    total += Number(m[1]) * factor[m[2]];
    matched = re.lastIndex;
  }
  return matched === s.length ? total : null;
}

/** The compact form parseDuration reads back: 14400 → "4h", 5400 → "1h30m", 0 → "0". */
export function compactDuration(seconds: number): string {
  if (!seconds) return '0';
  let s = seconds;
  const out: string[] = [];
  for (const [unit, size] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    const n = Math.floor(s / size);
    if (n) out.push(`${n}${unit}`);
    s -= n * size;
  }
  return out.join('');
}

/**
 * Parses a byte count: "1048576", "512K", "50M", "1G", "50MiB" (binary
 * units). Empty or invalid: null.
 */
export function parseBytes(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(b|k|kib|kb|m|mib|mb|g|gib|gb|t|tib|tb)?\s*$/i.exec(text);
  if (!m) return null;
  const unit = (m[2] ?? 'b').toLowerCase()[0];
  const power = { b: 0, k: 1, m: 2, g: 3, t: 4 }[unit] ?? 0;
  return Math.round(Number(m[1]) * 1024 ** power);
}
