import { describe, expect, it } from 'vitest';
import { csvField, toCsv } from './csv';
import { complianceColumns, complianceCsv, drillsCsv, signedReportFile } from './exports';
import type { ComplianceRow, SignedDrillReport } from '../api/types';

describe('csvField', () => {
  it('leaves plain text and numbers alone', () => {
    expect(csvField('finance')).toBe('finance');
    expect(csvField(42)).toBe('42');
    expect(csvField(-3.5)).toBe('-3.5');
    expect(csvField(true)).toBe('true');
    expect(csvField(null)).toBe('');
    expect(csvField(undefined)).toBe('');
    expect(csvField(NaN)).toBe('');
  });

  it('quotes commas, quotes, line breaks and edge spaces, doubling quotes', () => {
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('line1\nline2')).toBe('"line1\nline2"');
    expect(csvField('cr\r')).toBe('"cr\r"');
    expect(csvField(' padded')).toBe('" padded"');
    expect(csvField('财务局')).toBe('财务局');
  });

  it('defuses text a spreadsheet would run as a formula', () => {
    expect(csvField('=HYPERLINK("x")')).toBe(`"'=HYPERLINK(""x"")"`);
    expect(csvField('+cmd')).toBe("'+cmd");
    expect(csvField('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvField('-rf')).toBe("'-rf");
    expect(csvField('-12')).toBe('-12');
  });
});

describe('toCsv', () => {
  it('writes a header and CRLF-separated records', () => {
    expect(toCsv(['a', 'b'], [[1, 'x,y'], [null, 'z']])).toBe('a,b\r\n1,"x,y"\r\n,z\r\n');
  });
});

const row: ComplianceRow = {
  department: 'finance',
  source: 3,
  host: 'fin-db-01',
  paths: ['/srv/db', '/etc'],
  image: false,
  policy: 'finance-db',
  rpo_seconds: 14400,
  newest_good_snapshot: 'abcd',
  rpo_achieved_seconds: 3600,
  rpo_state: 'met',
  offsite: 'replicated',
  damaged_snapshots: 0,
  rto_seconds: 7200,
  last_drill: { drill: 9, finished: '2026-12-01T01:00:00Z', ok: true, total_seconds: 600, rto_met: true, read_site: 'dr' },
  drill_every_seconds: 2592000,
  drill_fresh: true,
  backups: { done: 10, failed: 1, missed: 0 },
  backup_success_percent: 90.9,
  department_stored_bytes: 1000,
  compliant: true,
};

describe('exports', () => {
  it('writes one compliance row per source under the documented columns', () => {
    const lines = complianceCsv([row]).trimEnd().split('\r\n');
    expect(lines[0]).toBe(complianceColumns.join(','));
    expect(lines).toHaveLength(2);
    const cells = lines[1].split(',');
    expect(cells).toHaveLength(complianceColumns.length);
    expect(cells[0]).toBe('finance');
    expect(cells[3]).toBe('/srv/db /etc');
    expect(cells[complianceColumns.indexOf('last_drill_read_site')]).toBe('dr');
    expect(cells[complianceColumns.indexOf('compliant')]).toBe('true');
  });

  it('leaves a source never drilled with empty drill cells', () => {
    const cells = complianceCsv([{ ...row, last_drill: null }]).split('\r\n')[1].split(',');
    expect(cells[complianceColumns.indexOf('last_drill')]).toBe('');
  });

  const drill: SignedDrillReport = {
    report: {
      version: 1,
      drill: 9,
      vault_site: 'city',
      department: 'finance',
      snapshot: 'ab12cd34000000000000000a',
      snapshot_time: '2026-12-01T00:00:00Z',
      snapshot_host: 'fin-db-01',
      snapshot_paths: ['/srv/db'],
      drill_host: 'drill-01',
      started: '2026-12-01T01:00:00Z',
      finished: '2026-12-01T01:10:00Z',
      files: 120,
      bytes: 5000,
      millis: { total: 600500 },
      rto_seconds: 7200,
      rto_met: true,
      read_site: 'dr',
      ok: false,
      failure: 'check exited 1, "db" missing',
    },
    signature: 'ff'.repeat(64),
    key_sha256: 'ee'.repeat(32),
  };

  it('writes the drill history with the failure quoted', () => {
    const csv = drillsCsv([drill]);
    expect(csv).toContain('"check exited 1, ""db"" missing"');
    expect(csv.split('\r\n')[1].startsWith('9,finance,ab12cd34000000000000000a,')).toBe(true);
    expect(csv).toContain(',600.5,');
  });

  it('saves a signed report as the vault signed it', () => {
    const file = JSON.parse(signedReportFile(drill));
    expect(Object.keys(file)).toEqual(['report', 'signature', 'key_sha256']);
    expect(file.report).toEqual(drill.report);
    expect(file.signature).toBe(drill.signature);
  });
});
