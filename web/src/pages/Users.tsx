import { useState, type FormEvent } from 'react';
import { api } from '../api';
import { ErrorBanner, Spinner } from '../components/ui';
import { messageOf, useAsync } from '../hooks';

/** Administrators: the users of this server, and new accounts (sign-up is closed after the first). */
export function UsersPage() {
  const users = useAsync(() => api.users(), []);
  const [email, setEmail] = useState('');
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const create = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setNotice(null);
    try {
      const user = await api.createUser(email.trim(), name.trim(), password);
      setNotice(`${user.email} can now log in${password ? '' : ' (no password: API keys only, from `vizdex user create`)'}; share datasets with them by email.`);
      setEmail('');
      setName('');
      setPassword('');
      users.reload();
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="page narrow">
      <div className="page-header">
        <h1>Users</h1>
      </div>
      <form className="card invite-user" onSubmit={create} aria-label="Create a user">
        <h2>Create a user</h2>
        <label>
          Email
          <input type="email" name="new_email" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </label>
        <label>
          Name (optional)
          <input type="text" name="new_name" value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <label>
          Password
          <input type="password" name="new_password" autoComplete="new-password" value={password} onChange={(e) => setPassword(e.target.value)} />
        </label>
        <ErrorBanner error={error} onDismiss={() => setError(null)} />
        {notice && (
          <div className="banner banner-ok" role="status">
            {notice}
          </div>
        )}
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create user'}
        </button>
      </form>
      <ErrorBanner error={users.error} onRetry={users.reload} />
      {users.loading && !users.data && <Spinner />}
      {users.data && (
        <table className="table" aria-label="Users">
          <thead>
            <tr>
              <th>Email</th>
              <th>Name</th>
              <th>Role</th>
            </tr>
          </thead>
          <tbody>
            {users.data.map((u) => (
              <tr key={u.user_id}>
                <td>{u.email}</td>
                <td>{u.name}</td>
                <td>{u.is_admin ? 'administrator' : 'user'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </main>
  );
}
