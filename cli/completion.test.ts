import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Argument, Command, Option } from 'commander';
import { expectMatchesGolden } from '../testing/jest/golden.js';
import { bashCompletion, completionTreeOf, zshCompletion } from './completion.js';

function program(): Command {
  const root = new Command('weft');
  root.command('manifests').option('--image <image>');
  const dev = root.command('dev');
  dev.command('shell');
  root
    .command('proxy-config')
    .addArgument(new Argument('<kind>').choices(['clusters', 'routes']))
    .argument('<pod>')
    .addOption(new Option('-o, --output <format>').choices(['table', 'json']))
    .option('--kubeconfig <path>');
  root.command('proxy-status').argument('[pod]').option('--kubeconfig <path>');
  return root;
}

/** Runs the generated script in bash and asks it to complete `words`. */
function complete(words: string[]): string[] {
  const script = `${bashCompletion(completionTreeOf(program()))}
weft() { if [ "$1" = proxy-status ]; then echo reviews-v1.bookinfo; echo client-1.traffic; fi; }
COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}
_weft_completions; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const result = spawnSync('bash', ['-c', script], { encoding: 'utf8' });
  expect(result.stderr).toBe('');
  return result.stdout.split('\n').filter(Boolean);
}

describe('shell completion', () => {
  it('is generated from the command tree', () => {
    expectMatchesGolden(join(import.meta.dirname, 'testdata', 'completion.bash'), bashCompletion(completionTreeOf(program())));
    expect(zshCompletion(completionTreeOf(program()))).toContain('bashcompinit');
  });

  it('completes commands, fixed arguments, flag values and live proxy names in bash', () => {
    expect(complete(['weft', 'pro'])).toEqual(['proxy-config', 'proxy-status']);
    expect(complete(['weft', 'dev', ''])).toEqual(['shell']);
    expect(complete(['weft', 'proxy-config', 'r'])).toEqual(['routes']);
    expect(complete(['weft', 'proxy-config', '-o', 'json', 'routes', ''])).toEqual(['reviews-v1.bookinfo', 'client-1.traffic']);
    expect(complete(['weft', 'proxy-config', '-o', 'j'])).toEqual(['json']);
    expect(complete(['weft', 'proxy-status', '--k'])).toEqual(['--kubeconfig']);
  });
});
