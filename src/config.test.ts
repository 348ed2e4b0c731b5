import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

describe('loadConfig', () => {
  it('uses the embedded defaults', () => {
    const config = loadConfig({}, {});
    expect(config).toMatchObject({ host: '127.0.0.1', port: 8080, dataDir: path.resolve('./data'), publicUrl: null, openSignup: false });
    expect(config.maxFileBytes).toBe(2 * 1024 ** 3);
    expect(config.maxRequestFiles).toBe(1000);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('lets flags win over the environment', () => {
    const config = loadConfig({ port: '9000', dataDir: '/tmp/x' }, { VIZDEX_PORT: '7000', VIZDEX_HOST: '0.0.0.0', VIZDEX_DATA_DIR: '/tmp/y' });
    expect(config).toMatchObject({ port: 9000, host: '0.0.0.0', dataDir: '/tmp/x' });
  });

  it('lists every bad key at once', () => {
    const env = { VIZDEX_PORT: 'abc', VIZDEX_OPEN_SIGNUP: 'maybe', VIZDEX_PUBLIC_URL: 'ftp://x', VIZDEX_SECRET_KEY: 'short', VIZDEX_MAX_FILE_BYTES: '-1' };
    let problems: string[] = [];
    try {
      loadConfig({}, env);
    } catch (error) {
      problems = (error as ConfigError).problems;
    }
    expect(problems.map((p) => p.split(':')[0]).sort()).toEqual(Object.keys(env).sort());
  });

  it('normalises the public URL', () => {
    expect(loadConfig({}, { VIZDEX_PUBLIC_URL: 'https://vizdex.example.com/' }).publicUrl).toBe('https://vizdex.example.com');
  });
});
