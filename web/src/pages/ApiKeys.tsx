import { useState } from 'react';
import { api } from '../api';
import { CopyButton, ErrorBanner, Spinner } from '../components/ui';
import { formatDate } from '../format';
import { messageOf, useAsync } from '../hooks';

function pythonSnippet(base: string, key: string, secret: string): string {
  return `# Python 3, standard library only (with PyJWT: jwt.encode(payload, API_SECRET, "HS256", headers={"kid": API_KEY}))
import base64, hashlib, hmac, json, time, urllib.request

API_KEY = "${key}"
API_SECRET = "${secret}"
BASE_URL = "${base}/api/v1"

def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

def token(ttl=600):
    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": API_KEY}).encode())
    payload = b64(json.dumps({"sub": API_KEY, "iat": now, "exp": now + ttl, "iss": "sdk"}).encode())
    signature = b64(hmac.new(API_SECRET.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest())
    return f"{header}.{payload}.{signature}"

request = urllib.request.Request(f"{BASE_URL}/datasets", headers={"Authorization": f"Bearer {token()}"})
print(json.load(urllib.request.urlopen(request)))
`;
}

function curlSnippet(base: string, key: string, secret: string): string {
  return `export JWT=$(npx vizdex token --api-key '${key}' --api-secret '${secret}')
curl -H "Authorization: Bearer $JWT" ${base}/api/v1/datasets
`;
}

/** API key pairs for scripts: create (secret shown once, with snippets), list, revoke. */
export function ApiKeysPage() {
  const keys = useAsync(() => api.apiKeys(), []);
  const [created, setCreated] = useState<{ api_key: string; api_secret: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const base = window.location.origin;

  const create = async () => {
    setBusy(true);
    setError(null);
    try {
      const pair = await api.createApiKey();
      setCreated(pair);
      keys.reload();
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  const revoke = async (key: string) => {
    setError(null);
    try {
      await api.revokeApiKey(key);
      if (created?.api_key === key) setCreated(null);
      keys.reload();
    } catch (err) {
      setError(messageOf(err));
    }
  };

  return (
    <main className="page narrow">
      <div className="page-header">
        <h1>API keys</h1>
        <button type="button" className="primary" disabled={busy} onClick={create}>
          {busy ? 'Creating…' : 'Create API key'}
        </button>
      </div>
      <p className="muted">
        Scripts and SDKs sign a short-lived JWT with a key pair (HS256, <code>kid</code> = key), exactly as for Visual Layer: change only the base URL and the
        credentials.
      </p>
      <ErrorBanner error={error} onDismiss={() => setError(null)} />
      {created && (
        <section className="card secret" data-testid="new-key">
          <h2>Your new key pair</h2>
          <p className="warning">Store the secret now: it is shown only this once.</p>
          <dl className="kv">
            <dt>API key</dt>
            <dd>
              <code data-testid="api-key">{created.api_key}</code> <CopyButton text={created.api_key} />
            </dd>
            <dt>API secret</dt>
            <dd>
              <code data-testid="api-secret">{created.api_secret}</code> <CopyButton text={created.api_secret} />
            </dd>
          </dl>
          <h3>Python</h3>
          <pre className="code" data-testid="python-snippet">{pythonSnippet(base, created.api_key, created.api_secret)}</pre>
          <CopyButton text={pythonSnippet(base, created.api_key, created.api_secret)} label="Copy Python" />
          <h3>curl</h3>
          <pre className="code">{curlSnippet(base, created.api_key, created.api_secret)}</pre>
          <CopyButton text={curlSnippet(base, created.api_key, created.api_secret)} label="Copy curl" />
          <div className="dialog-actions">
            <button type="button" onClick={() => setCreated(null)}>
              I have stored it
            </button>
          </div>
        </section>
      )}
      <ErrorBanner error={keys.error} onRetry={keys.reload} />
      {keys.loading && !keys.data && <Spinner />}
      {keys.data && (
        <table className="table" aria-label="API keys">
          <thead>
            <tr>
              <th>Key</th>
              <th>Created</th>
              <th>Last used</th>
              <th>State</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {keys.data.length === 0 && (
              <tr>
                <td colSpan={5} className="muted">
                  No API keys yet.
                </td>
              </tr>
            )}
            {keys.data.map((k) => (
              <tr key={k.api_key}>
                <td>
                  <code>{k.api_key}</code>
                </td>
                <td>{formatDate(k.created_at)}</td>
                <td>{formatDate(k.last_used_at)}</td>
                <td>{k.revoked_at ? `revoked ${formatDate(k.revoked_at)}` : 'active'}</td>
                <td>
                  {!k.revoked_at && (
                    <button type="button" className="small danger" onClick={() => revoke(k.api_key)}>
                      Revoke
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </main>
  );
}
