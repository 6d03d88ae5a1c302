// The `sluice` command's dispatch, runnable as is by runtimes that load TypeScript themselves
// (`bun bin/cli.ts …`, `deno run -A bin/cli.ts …`); Node reaches it through bin/sluice.mjs.
const argv = process.argv.slice(2);
const command = argv[0];
const entry = command === 'broker' ? '../server/main.ts' : command === 'bench' ? '../bench/main.ts' : '../client/cli/main.ts';
const mod = (await import(entry)) as { main(argv: string[]): Promise<void> };
await mod.main(argv);
