import { useState } from 'preact/hooks';
import type { Api, SessionEndReason } from '../api/client';
import type { LoginAnswer } from '../api/types';
import { t } from '../i18n';
import { LangSwitch } from '../components/lang';
import { ApiError } from '../api/client';
import { errorText, Note } from '../components/ui';

export function LoginPage({
  api,
  ended,
  onLoggedIn,
}: {
  api: Api;
  ended: SessionEndReason | null;
  onLoggedIn: (a: LoginAnswer) => void;
}) {
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState<'password' | 'cert' | null>(null);
  const [error, setError] = useState<unknown>(null);

  const [missing, setMissing] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setMissing(user.trim() === '' || password === '');
    if (user.trim() === '' || password === '') return;
    setBusy('password');
    setError(null);
    try {
      onLoggedIn(await api.login(user.trim(), password));
    } catch (err) {
      setError(err);
      setPassword('');
    } finally {
      setBusy(null);
    }
  };

  const certificate = async () => {
    setBusy('cert');
    setError(null);
    try {
      onLoggedIn(await api.loginWithCertificate());
    } catch (err) {
      setError(err);
    } finally {
      setBusy(null);
    }
  };

  return (
    <main class="login-page">
      <div class="login-box">
        <div class="login-head">
          <div class="brand">
            <span class="brand-mark" aria-hidden="true">
              ▲
            </span>
            <span class="brand-name">{t('app.name')}</span>
          </div>
          <LangSwitch />
        </div>
        <h1>{t('login.title')}</h1>
        <p class="muted">{t('login.intro')}</p>
        {ended ? (
          <Note kind="warn" testid="login-message">
            {ended === 'csrf' ? t('login.csrfEnded') : t('login.sessionEnded')}
          </Note>
        ) : null}
        <form noValidate onSubmit={submit}>
          <div class="field">
            <label for="login-user">{t('login.user')}</label>
            <input
              id="login-user"
              data-testid="login-user"
              autoComplete="username"
              autoFocus
              required
              value={user}
              onInput={(e) => setUser((e.target as HTMLInputElement).value)}
            />
          </div>
          <div class="field">
            <label for="login-password">{t('login.password')}</label>
            <input
              id="login-password"
              data-testid="login-password"
              type="password"
              autoComplete="current-password"
              required
              value={password}
              onInput={(e) => setPassword((e.target as HTMLInputElement).value)}
            />
          </div>
          {missing ? <Note kind="error">{t('login.missing')}</Note> : null}
          {error ? (
            <Note kind="error" testid="login-error">
              {error instanceof ApiError && error.status === 401 ? t('login.failed', { message: error.message }) : errorText(error)}
            </Note>
          ) : null}
          <div class="form-actions">
            <button type="submit" class="btn btn-primary btn-wide" data-testid="login-submit" disabled={busy !== null}>
              {busy === 'password' ? t('login.working') : t('login.submit')}
            </button>
          </div>
        </form>
        <div class="login-alt">
          <p class="muted">{t('login.certIntro')}</p>
          <button type="button" class="btn btn-wide" data-testid="login-cert" disabled={busy !== null} onClick={certificate}>
            {busy === 'cert' ? t('login.working') : t('login.cert')}
          </button>
        </div>
      </div>
    </main>
  );
}
