// What each role sees and may do in the console (doc/design.md section 18,
// doc/api.md). The vault enforces every rule itself; this only keeps the
// console from offering what the role cannot do. Operators are further
// scoped to their departments, which the API applies to every list.

import type { Role } from '../api/types';

export const pages = [
  'overview',
  'departments',
  'policies',
  'jobs',
  'snapshots',
  'dr',
  'compliance',
  'audit',
  'users',
] as const;
export type Page = (typeof pages)[number];

export const actions = [
  'department.create', // POST /departments
  'token.create', // POST /departments/{d}/tokens (releases keys: never an auditor)
  'agent.revoke', // POST /agents/{serial}/revoke
  'policy.edit', // POST, PATCH /policies
  'source.edit', // POST, DELETE /sources
  'job.start', // POST /jobs
  'snapshot.restore', // restore and drill command lines (kRestore)
  'snapshot.browse', // GET .../snapshots/{s}/tree (file names are the department's data)
  'snapshot.drill', // POST .../snapshots/{s}/drill
  'dr.failover', // POST /promote, /demote
  'audit.read', // GET /audit, /audit/verify
  'user.list', // GET /users
  'user.manage', // POST /users, disable, enable, others' passwords
] as const;
export type Action = (typeof actions)[number];

const pageRoles: Record<Page, readonly Role[]> = {
  overview: ['admin', 'operator', 'dr', 'auditor'],
  departments: ['admin', 'operator', 'dr', 'auditor'],
  policies: ['admin', 'operator', 'dr', 'auditor'],
  jobs: ['admin', 'operator', 'dr', 'auditor'],
  snapshots: ['admin', 'operator', 'dr', 'auditor'],
  dr: ['admin', 'operator', 'dr', 'auditor'],
  compliance: ['admin', 'operator', 'dr', 'auditor'],
  audit: ['admin', 'auditor'],
  users: ['admin', 'auditor'],
};

const actionRoles: Record<Action, readonly Role[]> = {
  'department.create': ['admin'],
  'token.create': ['admin', 'operator'],
  'agent.revoke': ['admin', 'operator'],
  'policy.edit': ['admin', 'operator'],
  'source.edit': ['admin', 'operator'],
  'job.start': ['admin', 'operator'],
  'snapshot.restore': ['admin', 'operator', 'dr'],
  'snapshot.browse': ['admin', 'operator', 'dr'],
  'snapshot.drill': ['admin', 'operator', 'dr'],
  'dr.failover': ['admin', 'dr'],
  'audit.read': ['admin', 'auditor'],
  'user.list': ['admin', 'auditor'],
  'user.manage': ['admin'],
};

/** The pages a role sees, in navigation order. An unknown role sees the overview only. */
export function pagesFor(role: string): Page[] {
  const visible = pages.filter((p) => (pageRoles[p] as readonly string[]).includes(role));
  return visible.length ? visible : ['overview'];
}

export function mayVisit(role: string, page: Page): boolean {
  return pagesFor(role).includes(page);
}

/** Whether the console offers the action to the role. An unknown role may do nothing. */
export function can(role: string, action: Action): boolean {
  return (actionRoles[action] as readonly string[]).includes(role);
}

export function actionsFor(role: string): Action[] {
  return actions.filter((a) => can(role, a));
}
