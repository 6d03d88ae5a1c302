/**
 * `npm run test:unit` (bin/test.mjs --unit) runs only files that import no child_process,
 * and sets SLUICE_TEST_UNIT=1. The process helpers call this before starting anything, so a
 * test that reaches a broker or etcd process some other way still fails loudly in the unit
 * run rather than making it slow.
 */
export function refuseInUnitRun(what: string): void {
  if (process.env.SLUICE_TEST_UNIT) throw new Error(`${what} started during npm run test:unit: only in-process tests belong there (bin/test.mjs --unit)`);
}
