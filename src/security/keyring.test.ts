import { describe, expect, it } from 'vitest';
import { Keyring } from './keyring.js';
import { hashPassword, verifyPassword } from './passwords.js';

const KEY = 'a'.repeat(43);

describe('Keyring', () => {
  it('round-trips secrets and never stores them in the clear', () => {
    const keyring = new Keyring(KEY);
    const sealed = keyring.encrypt('my-api-secret');
    expect(sealed).not.toContain('my-api-secret');
    expect(sealed).not.toBe(keyring.encrypt('my-api-secret'));
    expect(keyring.decrypt(sealed)).toBe('my-api-secret');
  });

  it('refuses values sealed with another server key or tampered with', () => {
    const sealed = new Keyring(KEY).encrypt('secret');
    expect(() => new Keyring('b'.repeat(43)).decrypt(sealed)).toThrow();
    const [v, iv, tag, body] = sealed.split('.');
    const flipped = Buffer.from(body!, 'base64url');
    flipped[0]! ^= 1;
    expect(() => new Keyring(KEY).decrypt([v, iv, tag, flipped.toString('base64url')].join('.'))).toThrow();
  });

  it('signs and verifies', () => {
    const keyring = new Keyring(KEY);
    const signature = keyring.sign('token');
    expect(keyring.verify('token', signature)).toBe(true);
    expect(keyring.verify('tokem', signature)).toBe(false);
    expect(keyring.verify('token', signature.slice(1))).toBe(false);
    expect(new Keyring('c'.repeat(43)).verify('token', signature)).toBe(false);
  });
});

describe('passwords', () => {
  it('hashes with scrypt and verifies', async () => {
    const stored = await hashPassword('correct horse');
    expect(stored).toMatch(/^scrypt\$/);
    expect(stored).not.toContain('correct horse');
    expect(await verifyPassword('correct horse', stored)).toBe(true);
    expect(await verifyPassword('wrong horse', stored)).toBe(false);
    expect(await verifyPassword('x', 'garbage')).toBe(false);
  });
});
