/**
 * npm run bench:load  (npx tsx bench/load.ts [--seconds 10] [--images 200])
 *
 * Issue 9's bounded loopback load test: a real `vizdex serve` process on a temp data dir with a READY
 * dataset of ~200 small images, then autocannon for ~10 s per scenario: 50 connections polling
 * `GET /dataset/{id}`, 20 on `GET /explore/{id}`, 10 uploading small multipart bodies to one
 * transaction; the uploads are then processed and the dataset's n_images must equal the number of
 * files answered 202 (nothing lost). Prints requests/s, p50, p99, errors and non-2xx per scenario.
 * The scenarios live in test/hardening/load-scenarios.ts (the quick test uses them too).
 */
import { formatReport, runLoad } from '../test/hardening/load-scenarios.js';

const args = process.argv.slice(2);
const arg = (name: string, fallback: number) => {
  const at = args.indexOf(`--${name}`);
  const value = at >= 0 ? Number(args[at + 1]) : NaN;
  return Number.isFinite(value) && value > 0 ? value : fallback;
};

const started = Date.now();
const report = await runLoad({
  images: arg('images', 200),
  seconds: arg('seconds', 10),
  pollConnections: 50,
  exploreConnections: 20,
  uploadConnections: 10,
  // Bounds the processing step afterwards (each accepted upload is one image to decode and embed).
  maxUploads: arg('max-uploads', 4000),
  log: (line) => console.error(`[load] ${line}`),
});
console.log(formatReport(report));
console.log(`\ntotal ${((Date.now() - started) / 1000).toFixed(1)} s`);
const lost = report.processedImages !== report.acceptedFiles || report.processedFailed !== 0;
const failed = report.scenarios.some((s) => s.errors > 0 || s.timeouts > 0 || s.non2xx > 0);
process.exitCode = lost || failed ? 1 : 0;
