import { useState, type FormEvent } from 'react';
import { api, type Dataset } from '../api';
import { messageOf, useAsync } from '../hooks';
import { Dialog, ErrorBanner, Spinner } from './ui';

/** Members with their roles; the owner invites registered users by email (viewer or editor) and revokes. */
export function ShareDialog({ dataset, onClose }: { dataset: Dataset; onClose: () => void }) {
  const members = useAsync(() => api.members(dataset.id), [dataset.id]);
  const [email, setEmail] = useState('');
  const [role, setRole] = useState<'viewer' | 'editor'>('viewer');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const isOwner = dataset.role === 'owner';

  const invite = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setNotice(null);
    try {
      await api.invite(dataset.id, email.trim(), role);
      setNotice(`${email.trim()} can now open this dataset as ${role}.`);
      setEmail('');
      members.reload();
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  const revoke = async (who: string) => {
    setError(null);
    setNotice(null);
    try {
      await api.revoke(dataset.id, who);
      setNotice(`${who} no longer has access.`);
      members.reload();
    } catch (err) {
      setError(messageOf(err));
    }
  };

  return (
    <Dialog title={`Share “${dataset.display_name}”`} onClose={onClose}>
      <ErrorBanner error={members.error} onRetry={members.reload} />
      {members.loading && !members.data && <Spinner />}
      {members.data && (
        <ul className="members" aria-label="Members">
          {members.data.map((m) => (
            <li key={m.email} data-testid="member">
              <span className="member-email">{m.email}</span>
              <span className={`badge badge-${m.role === 'owner' ? 'blue' : 'grey'}`}>{m.role}</span>
              {isOwner && m.role !== 'owner' && (
                <button type="button" className="small danger" onClick={() => revoke(m.email)} aria-label={`Revoke ${m.email}`}>
                  Revoke
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      {isOwner ? (
        <form className="invite" onSubmit={invite} aria-label="Invite">
          <label>
            Invite by email
            <input type="email" name="invite_email" required value={email} onChange={(e) => setEmail(e.target.value)} placeholder="colleague@example.com" />
          </label>
          <label>
            Role
            <select name="invite_role" value={role} onChange={(e) => setRole(e.target.value as 'viewer' | 'editor')}>
              <option value="viewer">viewer — browse, search, export</option>
              <option value="editor">editor — also add media and reindex</option>
            </select>
          </label>
          <button type="submit" className="primary" disabled={busy}>
            {busy ? 'Inviting…' : 'Invite'}
          </button>
          <p className="hint">The person needs a vizdex account; inviting a member again changes their role.</p>
        </form>
      ) : (
        <p className="hint">Only the owner can invite members or revoke access; your role is {dataset.role}.</p>
      )}
      {notice && (
        <div className="banner banner-ok" role="status">
          {notice}
        </div>
      )}
      <ErrorBanner error={error} onDismiss={() => setError(null)} />
    </Dialog>
  );
}
