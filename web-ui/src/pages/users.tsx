import { useState } from 'preact/hooks';
import { seg } from '../api/client';
import type { Department, Role, User } from '../api/types';
import { Badge, ConfirmDialog, CopyButton, Dialog, EmptyRow, ErrorNote, LoadState, Note, Panel, TableWrap, Time } from '../components/ui';
import { useApp, useCan } from '../context';
import { t, type MessageKey } from '../i18n';
import { useAction, useResource } from '../lib/hooks';

const roles: Role[] = ['admin', 'operator', 'dr', 'auditor'];
const roleKey: Record<Role, MessageKey> = {
  admin: 'role.admin',
  operator: 'role.operator',
  dr: 'role.dr',
  auditor: 'role.auditor',
};
const roleHelp: Record<Role, MessageKey> = {
  admin: 'users.roleHelp.admin',
  operator: 'users.roleHelp.operator',
  dr: 'users.roleHelp.dr',
  auditor: 'users.roleHelp.auditor',
};

/** The vault's rule: at least 12 bytes (UTF-8). */
export function passwordLongEnough(p: string): boolean {
  return new TextEncoder().encode(p).length >= 12;
}

export function UsersPage() {
  const { api, me } = useApp();
  const mayManage = useCan('user.manage');
  const users = useResource(() => api.get<{ users: User[] }>('/users'), []);
  const [passwordFor, setPasswordFor] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [disabling, setDisabling] = useState<User | null>(null);
  const enable = useAction(async (u: User) => api.post(`/users/${seg(u.user)}/enable`));

  return (
    <div class="page" data-testid="users-page">
      {mayManage ? <CreateUser onCreated={() => users.reload()} /> : null}
      <Panel title={t('users.title')} testid="users-list">
        <LoadState loading={users.loading} error={users.error} hasData={!!users.data} />
        <ErrorNote error={enable.error} testid="user-action-error" />
        {note ? (
          <Note kind="ok" testid="user-note">
            {note}
          </Note>
        ) : null}
        <TableWrap label={t('users.title')}>
          <table>
            <thead>
              <tr>
                <th scope="col">{t('users.user')}</th>
                <th scope="col">{t('users.role')}</th>
                <th scope="col">{t('users.departments')}</th>
                <th scope="col">{t('common.state')}</th>
                <th scope="col">{t('common.created')}</th>
                {mayManage ? <th scope="col">{t('common.actions')}</th> : null}
              </tr>
            </thead>
            <tbody>
              {(users.data?.users ?? []).length === 0 && users.data ? <EmptyRow cols={6} /> : null}
              {(users.data?.users ?? []).map((u) => (
                <tr key={u.user} data-testid={`user-row-${u.user}`} class={u.disabled ? 'dim' : ''}>
                  <th scope="row">
                    {u.user}
                    {u.user === me.user ? <small class="muted"> {t('users.you')}</small> : null}
                  </th>
                  <td>{t(roleKey[u.role] ?? 'role.unknown')}</td>
                  <td>{u.departments.length ? u.departments.join(', ') : <span class="muted">—</span>}</td>
                  <td>{u.disabled ? <Badge tone="bad">{t('users.disabled')}</Badge> : <Badge tone="ok">{t('users.enabled')}</Badge>}</td>
                  <td>
                    <Time value={u.created} />
                  </td>
                  {mayManage ? (
                    <td class="actions">
                      <button
                        type="button"
                        class={u.disabled ? 'btn btn-small' : 'btn btn-small btn-danger'}
                        data-testid={`user-${u.disabled ? 'enable' : 'disable'}-${u.user}`}
                        disabled={enable.busy}
                        onClick={async () => {
                          setNote(null);
                          if (!u.disabled) {
                            setDisabling(u);
                            return;
                          }
                          const ok = await enable.run(u);
                          if (ok !== undefined) {
                            setNote(t('users.enabledDone', { user: u.user }));
                            await users.reload();
                          }
                        }}
                      >
                        {u.disabled ? t('users.enable') : t('users.disable')}
                      </button>
                      <button
                        type="button"
                        class="btn btn-small"
                        data-testid={`user-password-${u.user}`}
                        onClick={() => setPasswordFor(u.user)}
                      >
                        {t('users.setPassword')}
                      </button>
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
        {mayManage ? <p class="muted small">{t('users.disableNote')}</p> : null}
      </Panel>
      {disabling ? (
        <ConfirmDialog
          title={t('users.disableTitle', { user: disabling.user })}
          danger
          confirmLabel={t('users.disableConfirm')}
          consequence={<p>{t('users.disableConsequence', { user: disabling.user })}</p>}
          onConfirm={async () => {
            await api.post(`/users/${seg(disabling.user)}/disable`);
            setNote(t('users.disabledDone', { user: disabling.user }));
            await users.reload();
          }}
          onClose={() => setDisabling(null)}
        />
      ) : null}
      {passwordFor ? (
        <PasswordDialog
          user={passwordFor}
          onClose={() => setPasswordFor(null)}
          onDone={() => setNote(t('users.passwordSet', { user: passwordFor }))}
        />
      ) : null}
    </div>
  );
}

function CreateUser({ onCreated }: { onCreated: () => void }) {
  const { api } = useApp();
  const depts = useResource(() => api.get<{ departments: Department[] }>('/departments'), []);
  const [name, setName] = useState('');
  const [role, setRole] = useState<Role>('operator');
  const [chosen, setChosen] = useState<string[]>([]);
  const [password, setPassword] = useState('');
  const [created, setCreated] = useState<{ user: string; role: string; password?: string } | null>(null);
  const [localError, setLocalError] = useState<MessageKey | null>(null);
  const create = useAction(async (body: Record<string, unknown>) =>
    api.post<{ user: string; role: string; password?: string }>('/users', body),
  );

  return (
    <Panel title={t('users.createTitle')} testid="user-create">
      <form noValidate
        onSubmit={async (e) => {
          e.preventDefault();
          setCreated(null);
          setLocalError(null);
          if (role === 'operator' && chosen.length === 0) {
            setLocalError('users.needDepartment');
            return;
          }
          if (password !== '' && !passwordLongEnough(password)) {
            setLocalError('users.passwordShort');
            return;
          }
          const body: Record<string, unknown> = { user: name.trim(), role };
          if (role === 'operator') body.departments = chosen;
          if (password !== '') body.password = password;
          const u = await create.run(body);
          if (u) {
            setCreated(u);
            setName('');
            setPassword('');
            setChosen([]);
            onCreated();
          }
        }}
      >
        <div class="row">
          <div class="field">
            <label for="user-create-name">{t('users.user')}</label>
            <input
              id="user-create-name"
              data-testid="user-create-name"
              required
              autoComplete="off"
              value={name}
              onInput={(e) => setName((e.target as HTMLInputElement).value)}
            />
          </div>
          <div class="field">
            <label for="user-create-role">{t('users.role')}</label>
            <select
              id="user-create-role"
              data-testid="user-create-role"
              value={role}
              onChange={(e) => setRole((e.target as HTMLSelectElement).value as Role)}
            >
              {roles.map((r) => (
                <option key={r} value={r}>
                  {t(roleKey[r])}
                </option>
              ))}
            </select>
            <small class="muted">{t(roleHelp[role])}</small>
          </div>
          <div class="field">
            <label for="user-create-password">{t('users.password')}</label>
            <input
              id="user-create-password"
              data-testid="user-create-password"
              type="password"
              autoComplete="new-password"
              value={password}
              onInput={(e) => setPassword((e.target as HTMLInputElement).value)}
            />
            <small class="muted">{t('users.passwordHelp')}</small>
          </div>
        </div>
        {role === 'operator' ? (
          <fieldset data-testid="user-create-departments">
            <legend>{t('users.departments')}</legend>
            <div class="checks">
              {(depts.data?.departments ?? []).map((d) => (
                <div class="field checkbox" key={d.name}>
                  <input
                    type="checkbox"
                    id={`user-create-dept-${d.name}`}
                    data-testid={`user-create-dept-${d.name}`}
                    checked={chosen.includes(d.name)}
                    onChange={(e) =>
                      setChosen((c) => ((e.target as HTMLInputElement).checked ? [...c, d.name] : c.filter((x) => x !== d.name)))
                    }
                  />
                  <label for={`user-create-dept-${d.name}`}>{d.name}</label>
                </div>
              ))}
            </div>
          </fieldset>
        ) : null}
        {localError ? <Note kind="error">{t(localError)}</Note> : null}
        <ErrorNote error={create.error} testid="user-create-error" />
        <div class="form-actions left">
          <button type="submit" class="btn btn-primary" data-testid="user-create-submit" disabled={create.busy}>
            {t('users.create')}
          </button>
        </div>
      </form>
      {created ? (
        <div class="result" data-testid="user-created">
          <Note kind="ok">{t('users.created', { user: created.user })}</Note>
          {created.password ? (
            <>
              <p>{t('users.generated')}</p>
              <div class="command">
                <code data-testid="user-created-password">{created.password}</code>
                <CopyButton text={created.password} testid="user-created-password-copy" />
              </div>
            </>
          ) : null}
        </div>
      ) : null}
    </Panel>
  );
}

function PasswordDialog({ user, onClose, onDone, self = false }: { user: string; onClose: () => void; onDone?: () => void; self?: boolean }) {
  const { api } = useApp();
  const [password, setPassword] = useState('');
  const [again, setAgain] = useState('');
  const [localError, setLocalError] = useState<MessageKey | null>(null);
  const [done, setDone] = useState(false);
  const set = useAction(async () => api.post(`/users/${seg(user)}/password`, { password }));
  return (
    <Dialog title={self ? t('users.ownPasswordTitle') : t('users.passwordTitle', { user })} onClose={onClose} testid="password-dialog">
      {done ? (
        <>
          <Note kind="ok" testid="password-done">
            {t('users.passwordSet', { user })}
          </Note>
          <div class="form-actions">
            <button type="button" class="btn btn-primary" onClick={onClose} data-autofocus>
              {t('common.close')}
            </button>
          </div>
        </>
      ) : (
        <form noValidate
          onSubmit={async (e) => {
            e.preventDefault();
            setLocalError(null);
            if (!passwordLongEnough(password)) {
              setLocalError('users.passwordShort');
              return;
            }
            if (password !== again) {
              setLocalError('users.passwordMismatch');
              return;
            }
            const ok = await set.run();
            if (ok !== undefined) {
              setDone(true);
              onDone?.();
            }
          }}
        >
          <div class="field">
            <label for="password-new">{t('users.newPassword')}</label>
            <input
              id="password-new"
              data-testid="password-new"
              type="password"
              autoComplete="new-password"
              data-autofocus
              value={password}
              onInput={(e) => setPassword((e.target as HTMLInputElement).value)}
            />
            <small class="muted">{t('users.passwordRule')}</small>
          </div>
          <div class="field">
            <label for="password-again">{t('users.passwordAgain')}</label>
            <input
              id="password-again"
              data-testid="password-again"
              type="password"
              autoComplete="new-password"
              value={again}
              onInput={(e) => setAgain((e.target as HTMLInputElement).value)}
            />
          </div>
          {localError ? <Note kind="error">{t(localError)}</Note> : null}
          <ErrorNote error={set.error} testid="password-error" />
          <div class="form-actions">
            <button type="button" class="btn" onClick={onClose}>
              {t('common.cancel')}
            </button>
            <button type="submit" class="btn btn-primary" data-testid="password-submit" disabled={set.busy}>
              {t('users.setPassword')}
            </button>
          </div>
        </form>
      )}
    </Dialog>
  );
}

/** Anyone may set their own password (header button). */
export function OwnPasswordDialog({ user, onClose }: { user: string; onClose: () => void }) {
  return <PasswordDialog user={user} onClose={onClose} self />;
}
