// The entry of a `sluice run --threads N` worker thread (runner/src/cli/run-threads.ts): a thread
// does not inherit the main thread's tsx registration, so it registers its own, as sluice.js does.
import { register } from 'tsx/esm/api';
register();
await import('../src/cli/run-thread.ts');
