// `weft completion bash|zsh`: prints the shell completion script.
import { Argument, type Command } from 'commander';
import { print } from './command-options.js';
import { bashCompletion, completionTreeOf, zshCompletion } from './completion.js';

export function registerCompletionCommand(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script: source <(weft completion bash), or zsh')
    .addArgument(new Argument('<shell>', 'the shell').choices(['bash', 'zsh']))
    .action((shell: 'bash' | 'zsh') => {
      const tree = completionTreeOf(program);
      print(shell === 'bash' ? bashCompletion(tree) : zshCompletion(tree));
    });
}
