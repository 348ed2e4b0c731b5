import { useEffect, useState, type FormEvent } from 'react';
import { api, type User } from '../api';
import { ErrorBanner } from '../components/ui';
import { messageOf } from '../hooks';

/** Log in, or sign up (the first account on a fresh install, which becomes the administrator). */
export function LoginPage({ onLoggedIn }: { onLoggedIn: (user: User) => void }) {
  const [signupOpen, setSignupOpen] = useState<boolean | null>(null);
  const [mode, setMode] = useState<'login' | 'signup'>('login');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [name, setName] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [configError, setConfigError] = useState<string | null>(null);

  useEffect(() => {
    api.authConfig().then(
      (config) => {
        setSignupOpen(config.signup_open);
        if (config.signup_open) setMode('signup');
      },
      (err: unknown) => setConfigError(messageOf(err)),
    );
  }, []);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const user = mode === 'login' ? await api.login(email.trim(), password) : await api.signup(email.trim(), password, name.trim() || undefined);
      onLoggedIn(user);
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="login">
      <form className="card login-card" onSubmit={submit} aria-label={mode === 'login' ? 'Log in' : 'Sign up'}>
        <h1 className="brand-large">vizdex</h1>
        <p className="muted">Visual datasets: duplicates, outliers, clusters, search, export.</p>
        <h2>{mode === 'login' ? 'Log in' : 'Create an account'}</h2>
        {mode === 'signup' && signupOpen && <p className="hint">Sign-up is open. On a fresh install, the first account becomes the administrator.</p>}
        <ErrorBanner error={configError} />
        <label>
          Email
          <input type="email" name="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </label>
        {mode === 'signup' && (
          <label>
            Name (optional)
            <input type="text" name="name" autoComplete="name" value={name} onChange={(e) => setName(e.target.value)} />
          </label>
        )}
        <label>
          Password
          <input
            type="password"
            name="password"
            autoComplete={mode === 'login' ? 'current-password' : 'new-password'}
            required
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        <ErrorBanner error={error} />
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Please wait…' : mode === 'login' ? 'Log in' : 'Sign up'}
        </button>
        {signupOpen && (
          <button type="button" className="link" onClick={() => setMode(mode === 'login' ? 'signup' : 'login')}>
            {mode === 'login' ? 'No account yet? Sign up' : 'Already have an account? Log in'}
          </button>
        )}
        {signupOpen === false && <p className="hint">Accounts are created by an administrator (Users, or `vizdex user create`).</p>}
      </form>
    </main>
  );
}
