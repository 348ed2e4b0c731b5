import { useEffect, useState } from 'react';
import { api, setUnauthorizedHandler, type User } from './api';
import { ErrorBanner, Spinner } from './components/ui';
import { messageOf } from './hooks';
import { ApiKeysPage } from './pages/ApiKeys';
import { DatasetsPage } from './pages/Datasets';
import { DatasetViewPage } from './pages/DatasetView';
import { DuplicatesPage } from './pages/Duplicates';
import { LoginPage } from './pages/Login';
import { MediaViewPage } from './pages/MediaView';
import { UsersPage } from './pages/Users';
import { Link, matchPath, navigate, useLocation } from './router';

/** Session, top bar and the page for the current path. */
export function App() {
  const [user, setUser] = useState<User | null | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [attempt, setAttempt] = useState(0);
  const { path } = useLocation();

  useEffect(() => {
    setUnauthorizedHandler(() => setUser(null));
    const controller = new AbortController();
    api.me(controller.signal).then(
      (me) => setUser(me),
      (err: { status?: number }) => {
        if (controller.signal.aborted) return;
        if (err.status === 401) setUser(null);
        else setError(messageOf(err));
      },
    );
    return () => controller.abort();
  }, [attempt]);

  useEffect(() => {
    if (user && path === '/login') navigate(new URLSearchParams(window.location.search).get('next') ?? '/datasets', { replace: true });
  }, [user, path]);

  if (user === undefined) {
    return (
      <main className="page">
        {error ? (
          <ErrorBanner
            error={`Cannot load vizdex: ${error}`}
            onRetry={() => {
              setError(null);
              setAttempt((a) => a + 1);
            }}
          />
        ) : (
          <Spinner />
        )}
      </main>
    );
  }
  if (user === null) return <LoginPage onLoggedIn={setUser} />;

  const logout = async () => {
    try {
      await api.logout();
    } finally {
      setUser(null);
      navigate('/login');
    }
  };

  return (
    <>
      <header className="topbar">
        <Link to="/datasets" className="brand">
          vizdex
        </Link>
        <nav aria-label="Main">
          <Link to="/datasets" aria-current={path === '/datasets' || path === '/' ? 'page' : undefined}>
            Datasets
          </Link>
          <Link to="/settings/api-keys" aria-current={path === '/settings/api-keys' ? 'page' : undefined}>
            API keys
          </Link>
          {user.is_admin && (
            <Link to="/settings/users" aria-current={path === '/settings/users' ? 'page' : undefined}>
              Users
            </Link>
          )}
        </nav>
        <span className="spacer" />
        <span className="muted small-text" data-testid="current-user">
          {user.email}
          {user.is_admin && ' (admin)'}
        </span>
        <button type="button" className="small" onClick={logout}>
          Log out
        </button>
      </header>
      <Page path={path} isAdmin={user.is_admin} />
    </>
  );
}

function Page({ path, isAdmin }: { path: string; isAdmin: boolean }) {
  if (path === '/' || path === '/datasets' || path === '/login') return <DatasetsPage />;
  if (path === '/settings/api-keys') return <ApiKeysPage />;
  if (path === '/settings/users' && isAdmin) return <UsersPage />;
  let m = matchPath('/dataset/:id/data', path);
  if (m) return <DatasetViewPage key={m.id} id={m.id!} />;
  m = matchPath('/dataset/:id/data/image/:mediaId', path);
  if (m) return <MediaViewPage key={`${m.id}/${m.mediaId}`} id={m.id!} mediaId={m.mediaId!} />;
  m = matchPath('/dataset/:id/duplicates', path);
  if (m) return <DuplicatesPage key={m.id} id={m.id!} />;
  m = matchPath('/dataset/:id', path);
  if (m) return <Redirect to={`/dataset/${m.id}/data`} />;
  return (
    <main className="page">
      <h1>Page not found</h1>
      <p>
        Nothing lives at <code>{path}</code>. <Link to="/datasets">Go to your datasets</Link>.
      </p>
    </main>
  );
}

function Redirect({ to }: { to: string }) {
  useEffect(() => navigate(to, { replace: true }), [to]);
  return null;
}
