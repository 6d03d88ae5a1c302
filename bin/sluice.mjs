#!/usr/bin/env node
// `sluice` on Node: registers tsx so Node runs the TypeScript sources directly, then runs the
// shared dispatch in bin/cli.ts.
import { register } from 'tsx/esm/api';

register();
await import('./cli.ts');
