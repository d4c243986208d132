// An error meant for the person at the terminal: its message says what went wrong
// and what to do next, and is printed as is (no stack).
export class CliError extends Error {
  override readonly name = 'CliError';
}
