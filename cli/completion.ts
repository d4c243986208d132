// `weft completion bash|zsh`: a completion script generated from the command tree,
// so new commands and flags complete without edits here. Arguments named `pod`
// complete live from `weft proxy-status -o name`.
import type { Command } from 'commander';

export interface CompletionOption {
  flags: string[];
  takesValue: boolean;
  choices?: string[];
}

export interface CompletionCommand {
  name: string;
  commands: CompletionCommand[];
  options: CompletionOption[];
  /** Per positional argument: fixed choices, live proxy names, or nothing to offer. */
  args: Array<string[] | 'proxies' | undefined>;
}

export function completionTreeOf(command: Command): CompletionCommand {
  const hidden = (c: Command) => (c as unknown as { _hidden?: boolean })._hidden === true;
  return {
    name: command.name(),
    commands: command.commands.filter((c) => !hidden(c)).map(completionTreeOf),
    options: [
      ...command.options
        .filter((o) => !o.hidden)
        .map((o) => ({
          flags: [o.short, o.long].filter((f): f is string => Boolean(f)),
          takesValue: o.required || o.optional,
          ...(o.argChoices ? { choices: [...o.argChoices] } : {}),
        })),
      { flags: ['-h', '--help'], takesValue: false },
    ],
    args: command.registeredArguments.map((a) => (a.argChoices ? [...a.argChoices] : a.name() === 'pod' ? 'proxies' : undefined)),
  };
}

interface Flattened {
  path: string;
  command: CompletionCommand;
}

function flatten(command: CompletionCommand, path = ''): Flattened[] {
  return [{ path, command }, ...command.commands.flatMap((c) => flatten(c, `${path}/${c.name}`))];
}

const quote = (words: string[]) => words.join(' ');

export function bashCompletion(root: CompletionCommand): string {
  const all = flatten(root);
  const fn = `_${root.name.replace(/[^A-Za-z0-9_]/g, '_')}_completions`;
  const valueFlags = [...new Set(all.flatMap(({ command }) => command.options.filter((o) => o.takesValue).flatMap((o) => o.flags)))].sort();
  const choiceCases = all.flatMap(({ path, command }) =>
    command.options
      .filter((o) => o.choices)
      .map(
        (o) => `    "${path} ${o.flags.join(`"|"${path} `)}") COMPREPLY=($(compgen -W "${quote(o.choices ?? [])}" -- "$cur")); return ;;`,
      ),
  );
  const pathCases = all
    .filter(({ path }) => path !== '')
    .map(({ path }) => `"${path}"`)
    .join('|');
  const wordCases = all.map(({ path, command }) => {
    const subcommands = command.commands.map((c) => c.name);
    const flags = command.options.flatMap((o) => o.flags).filter((f) => f.startsWith('--'));
    const argCases = command.args
      .map((arg, index) =>
        arg === 'proxies'
          ? `        ${index}) words="$(_${root.name.replace(/[^A-Za-z0-9_]/g, '_')}_proxies)" ;;`
          : arg
            ? `        ${index}) words="${quote(arg)}" ;;`
            : undefined,
      )
      .filter(Boolean);
    const lines = [`    "${path}")`];
    if (subcommands.length) lines.push(`      words="${quote(subcommands)}"`);
    else if (argCases.length) lines.push('      case $positional in', ...(argCases as string[]), '      esac');
    lines.push(`      [[ $cur == -* ]] && words="${quote(flags)}"`, '      ;;');
    return lines.join('\n');
  });
  return `# ${root.name} completion for bash; load with: source <(${root.name} completion bash)
_${root.name.replace(/[^A-Za-z0-9_]/g, '_')}_proxies() {
  "\${COMP_WORDS[0]}" proxy-status -o name 2>/dev/null
}

${fn}() {
  local cur prev word path="" positional=0 skip=0 i words=""
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev="\${COMP_WORDS[COMP_CWORD-1]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    if ((skip)); then skip=0; continue; fi
    case "$word" in
      ${valueFlags.length ? `${valueFlags.join('|')}) skip=1; continue ;;` : ''}
      -*) continue ;;
    esac
    case "$path/$word" in
      ${pathCases || '""'}) path="$path/$word"; positional=0 ;;
      *) positional=$((positional + 1)) ;;
    esac
  done
  case "$path $prev" in
${choiceCases.join('\n')}
  esac
  case "$path" in
${wordCases.join('\n')}
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F ${fn} ${root.name}
complete -F ${fn} kubectl-${root.name}
`;
}

/** zsh runs the bash script through bashcompinit, as many CLIs do. */
export function zshCompletion(root: CompletionCommand): string {
  return `#compdef ${root.name} kubectl-${root.name}
# ${root.name} completion for zsh; load with: source <(${root.name} completion zsh)
autoload -U +X compinit && compinit
autoload -U +X bashcompinit && bashcompinit
${bashCompletion(root)}`;
}
