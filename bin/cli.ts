// The `sluice` command's dispatch, runnable as is by runtimes that load TypeScript themselves
// (`bun bin/cli.ts …`, `deno run -A bin/cli.ts …`); Node reaches it through bin/sluice.mjs.
let argv = process.argv.slice(2);
const command = argv[0];
if (command === 'bench') {
  // TLS and SASL flags (--tls-ca, --sasl-username, ...) for the bench's own connections, as for every client command.
  const { applySecurityFlags } = await import('../client/cli/security-flags.ts');
  argv = [command, ...applySecurityFlags(argv.slice(1), process.env)];
}
const entry = command === 'broker' ? '../server/main.ts' : command === 'bench' ? '../bench/main.ts' : '../client/cli/main.ts';
const mod = (await import(entry)) as { main(argv: string[]): Promise<void> };
await mod.main(argv);
