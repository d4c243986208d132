// `make bench`, before it enters the network sandbox (which has no network): builds
// what the xDS benchmark runs from source, the load generator and istiod. Never
// fails the bench: without istiod the benchmark prints why and Weft's figures alone,
// without the load generator it prints why it skipped the xDS benchmark.
import { ensurePilotDiscovery } from '../cluster/binaries.js';
import { ensureXdsLoad } from './xds-load-binary.js';

const say = (line: string) => console.error(`[bench] ${line}`);
try {
  ensureXdsLoad(say);
} catch (error) {
  say(`the xDS mesh benchmark will be skipped: ${error instanceof Error ? error.message : String(error)}`);
}
if ((process.env['WEFT_BENCH_SERVERS'] ?? 'weft,istiod').includes('istiod')) {
  try {
    await ensurePilotDiscovery(say);
  } catch (error) {
    say(`istiod will be left out of the xDS benchmark: ${error instanceof Error ? error.message : String(error)}`);
  }
}
