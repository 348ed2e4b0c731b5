/**
 * Issue 9, load (quick version; `bench/load.ts` is the full one): status polling, explore and uploads
 * from many loopback clients at once, a few seconds each. Asserts no errors, timeouts or non-2xx
 * answers, and that every accepted upload is in the dataset after processing. No timing assertions.
 */
import { describe, expect, it } from 'vitest';
import { formatReport, runLoad } from './load-scenarios.js';

describe('loopback load (quick)', () => {
  it('polling, explore and uploads from many clients: nothing fails, nothing is lost', async () => {
    const report = await runLoad({ images: 40, seconds: 2, pollConnections: 20, exploreConnections: 8, uploadConnections: 5, maxUploads: 60 });
    console.log(formatReport(report));
    for (const scenario of report.scenarios) {
      expect(scenario.requests, scenario.name).toBeGreaterThan(0);
      expect({ name: scenario.name, errors: scenario.errors, timeouts: scenario.timeouts, non2xx: scenario.non2xx }).toEqual({
        name: scenario.name,
        errors: 0,
        timeouts: 0,
        non2xx: 0,
      });
    }
    expect(report.acceptedFiles).toBeGreaterThan(0);
    expect(report).toMatchObject({ finalStatus: 'READY', processedImages: report.acceptedFiles, processedFailed: 0 });
  }, 180_000);
});
