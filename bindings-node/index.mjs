// ESM entry of @vibetrees/native: the same objects as the CommonJS entry (index.js).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const api = require('./index.js');

export const {
  PortRegistry,
  Profiler,
  PerformanceOptimizer,
  CacheManager,
  WorktreeManager,
  History,
  coreVersion,
  errorCodes,
} = api;
export default api;
