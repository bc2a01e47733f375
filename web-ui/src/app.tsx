import { useEffect, useState } from 'preact/hooks';
import type { Api, SessionEndReason } from './api/client';
import type { Me } from './api/types';
import { mayVisit, pagesFor, type Page } from './auth/roles';
import { AppContext } from './context';
import { getLang, onLangChange, t, type Lang, type MessageKey } from './i18n';
import { LangSwitch } from './components/lang';
import { href, useRoute } from './router';
import { Loading } from './components/ui';
import { LoginPage } from './pages/login';
import { OverviewPage } from './pages/overview';
import { DepartmentsPage } from './pages/departments';
import { PoliciesPage } from './pages/policies';
import { JobsPage } from './pages/jobs';
import { SnapshotsPage } from './pages/snapshots';
import { DrPage } from './pages/dr';
import { CompliancePage } from './pages/compliance';
import { AuditPage } from './pages/audit';
import { UsersPage } from './pages/users';
import { OwnPasswordDialog } from './pages/users';

const pageTitle: Record<Page, MessageKey> = {
  overview: 'nav.overview',
  departments: 'nav.departments',
  policies: 'nav.policies',
  jobs: 'nav.jobs',
  snapshots: 'nav.snapshots',
  dr: 'nav.dr',
  compliance: 'nav.compliance',
  audit: 'nav.audit',
  users: 'nav.users',
};

const roleLabel: Record<string, MessageKey> = {
  admin: 'role.admin',
  operator: 'role.operator',
  dr: 'role.dr',
  auditor: 'role.auditor',
};

export function App({ api }: { api: Api }) {
  const [me, setMe] = useState<Me | null>(null);
  const [checking, setChecking] = useState(api.hasSession);
  const [ended, setEnded] = useState<SessionEndReason | null>(null);
  const [, setLangState] = useState<Lang>(getLang());

  useEffect(() => onLangChange(setLangState), []);

  useEffect(
    () =>
      api.onSessionEnded((reason) => {
        setMe(null);
        setEnded(reason);
      }),
    [api],
  );

  // A reload keeps the session: the cookie and the CSRF token survive it.
  useEffect(() => {
    if (!api.hasSession) return;
    api
      .me()
      .then((m) => setMe(m))
      .catch(() => setMe(null))
      .finally(() => setChecking(false));
  }, [api]);

  if (checking) {
    return (
      <main class="login-page">
        <Loading />
      </main>
    );
  }
  if (!me) {
    return (
      <LoginPage
        api={api}
        ended={ended}
        onLoggedIn={async (answer) => {
          setEnded(null);
          try {
            setMe(await api.me());
          } catch {
            setMe({ user: answer.user, role: answer.role, departments: answer.departments });
          }
        }}
      />
    );
  }
  return (
    <AppContext.Provider value={{ api, me }}>
      <Shell me={me} api={api} onLoggedOut={() => setMe(null)} />
    </AppContext.Provider>
  );
}

function Shell({ me, api, onLoggedOut }: { me: Me; api: Api; onLoggedOut: () => void }) {
  const route = useRoute();
  const [passwordOpen, setPasswordOpen] = useState(false);
  const page: Page = mayVisit(me.role, route.page) ? route.page : 'overview';
  const denied = page !== route.page;

  useEffect(() => {
    document.title = `${t(pageTitle[page])} · ${t('app.title')}`;
  }, [page, getLang()]);

  const logout = async () => {
    try {
      await api.logout();
    } catch {
      /* the session is gone either way */
    }
    onLoggedOut();
  };

  return (
    <div class="shell">
      <a class="skip-link" href="#main">
        {t('header.skip')}
      </a>
      <header class="topbar">
        <div class="brand">
          <span class="brand-mark" aria-hidden="true">
            ▲
          </span>
          <span class="brand-name">{t('app.name')}</span>
          {me.site ? (
            <span class="brand-site" data-testid="header-site">
              {t('header.site', { site: me.site })}
            </span>
          ) : null}
        </div>
        <div class="topbar-right">
          <span class="who" data-testid="header-user">
            {me.user} · {t(roleLabel[me.role] ?? 'role.unknown')}
            {me.role === 'operator' && me.departments.length ? ` (${me.departments.join(', ')})` : ''}
          </span>
          <button type="button" class="btn btn-small btn-ghost" data-testid="account-password" onClick={() => setPasswordOpen(true)}>
            {t('header.password')}
          </button>
          <LangSwitch />
          <button type="button" class="btn btn-small btn-ghost" data-testid="logout" onClick={logout}>
            {t('header.logout')}
          </button>
        </div>
      </header>
      <nav class="sidenav" aria-label={t('nav.label')}>
        <ul>
          {pagesFor(me.role).map((p) => (
            <li key={p}>
              <a href={href(p)} data-testid={`nav-${p}`} aria-current={p === page ? 'page' : undefined}>
                {t(pageTitle[p])}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" class="content" tabIndex={-1}>
        <h1 data-testid="page-title">{t(pageTitle[page])}</h1>
        {denied ? <p class="note note-warn">{t('nav.denied')}</p> : null}
        <PageBody page={page} args={denied ? [] : route.args} />
      </main>
      {passwordOpen ? <OwnPasswordDialog user={me.user} onClose={() => setPasswordOpen(false)} /> : null}
    </div>
  );
}

function PageBody({ page, args }: { page: Page; args: string[] }) {
  switch (page) {
    case 'overview':
      return <OverviewPage />;
    case 'departments':
      return <DepartmentsPage />;
    case 'policies':
      return <PoliciesPage />;
    case 'jobs':
      return <JobsPage />;
    case 'snapshots':
      return <SnapshotsPage args={args} />;
    case 'dr':
      return <DrPage />;
    case 'compliance':
      return <CompliancePage />;
    case 'audit':
      return <AuditPage />;
    case 'users':
      return <UsersPage />;
  }
}
