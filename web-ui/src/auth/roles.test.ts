import { describe, expect, it } from 'vitest';
import { actionsFor, can, mayVisit, pagesFor } from './roles';

describe('role → pages', () => {
  it('shows the administrator every page', () => {
    expect(pagesFor('admin')).toEqual([
      'overview', 'departments', 'policies', 'jobs', 'snapshots', 'dr', 'compliance', 'audit', 'users',
    ]);
  });

  it('keeps the audit trail and people from operators and the DR team', () => {
    for (const role of ['operator', 'dr']) {
      expect(mayVisit(role, 'audit')).toBe(false);
      expect(mayVisit(role, 'users')).toBe(false);
      expect(mayVisit(role, 'overview')).toBe(true);
      expect(mayVisit(role, 'jobs')).toBe(true);
    }
  });

  it('lets auditors read the audit trail, compliance and people', () => {
    expect(mayVisit('auditor', 'audit')).toBe(true);
    expect(mayVisit('auditor', 'compliance')).toBe(true);
    expect(mayVisit('auditor', 'users')).toBe(true);
  });

  it('shows an unknown role the overview only', () => {
    expect(pagesFor('intern')).toEqual(['overview']);
  });
});

describe('role → actions', () => {
  it('gives the administrator every action', () => {
    expect(actionsFor('admin')).toHaveLength(13);
  });

  it('lets operators work in their departments, not fail over or manage people', () => {
    expect(actionsFor('operator').sort()).toEqual(
      [
        'agent.revoke', 'job.start', 'policy.edit', 'snapshot.browse', 'snapshot.drill', 'snapshot.restore',
        'source.edit', 'token.create',
      ].sort(),
    );
  });

  it('lets the DR team fail over, browse, drill and restore, and nothing else', () => {
    expect(actionsFor('dr').sort()).toEqual(['dr.failover', 'snapshot.browse', 'snapshot.drill', 'snapshot.restore']);
  });

  it('keeps file names from auditors: no browsing, no drill', () => {
    expect(['admin', 'operator', 'dr', 'auditor'].filter((r) => can(r, 'snapshot.browse'))).toEqual([
      'admin', 'operator', 'dr',
    ]);
    expect(can('auditor', 'snapshot.drill')).toBe(false);
  });

  it('lets auditors read only: no enrolment token, no job, no failover', () => {
    expect(actionsFor('auditor').sort()).toEqual(['audit.read', 'user.list']);
    expect(can('auditor', 'token.create')).toBe(false);
    expect(can('auditor', 'job.start')).toBe(false);
  });

  it('creates departments for administrators only', () => {
    expect(['admin', 'operator', 'dr', 'auditor'].filter((r) => can(r, 'department.create'))).toEqual(['admin']);
  });

  it('gives an unknown role nothing', () => {
    expect(actionsFor('')).toEqual([]);
  });
});
