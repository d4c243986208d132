// RE2, the regular expressions Envoy (and Istio's validation, through Go's regexp) accept,
// approximated with JavaScript's RegExp: RE2-only syntax is translated first, and what
// RE2 lacks (lookaround, backreferences) is refused even though JavaScript has it.

const maxLength = 1024; // Istio's stand-in for Envoy's re2.max_program_size
const maxRepeat = 1000; // RE2's limit on {n,m}

/** Why the text is not an RE2 expression, or undefined when it is one. */
export function re2Problem(re: string): string | undefined {
  if (re.length > maxLength) return `regex is too large, max length allowed is ${maxLength}`;
  let inClass = false;
  for (let i = 0; i < re.length; i++) {
    const c = re[i];
    if (c === '\\') {
      const next = re[i + 1] ?? '';
      if (!inClass && /[1-9]/.test(next) && !/^[1-7][0-7]{2}/.test(re.slice(i + 1))) {
        return `backreference \\${next} is not supported by RE2`;
      }
      if (next === 'k' && re[i + 2] === '<') return 'named backreferences are not supported by RE2';
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') {
      inClass = true;
      // A leading ] (or ^]) is a literal inside the class.
      if (re[i + 1] === '^') i++;
      if (re[i + 1] === ']') i++;
      continue;
    }
    if (c === '(' && re[i + 1] === '?') {
      const rest = re.slice(i + 2);
      if (rest.startsWith('=') || rest.startsWith('!') || rest.startsWith('<=') || rest.startsWith('<!')) {
        return 'lookahead and lookbehind are not supported by RE2';
      }
    }
    if (c === '{') {
      const repeat = /^\{(\d+)(?:,(\d*))?\}/.exec(re.slice(i));
      if (repeat && (Number(repeat[1]) > maxRepeat || Number(repeat[2] || 0) > maxRepeat)) {
        return `repeat count in ${repeat[0]} exceeds RE2's limit of ${maxRepeat}`;
      }
    }
  }
  if (inClass) return 'missing closing ]';
  // RE2 syntax JavaScript spells differently: (?P<name>...), \A, \z, and leading flag groups (?i).
  let translated = re
    .replace(/\(\?P</g, '(?<')
    .replace(/\\A/g, '^')
    .replace(/\\z/g, '$');
  const flags = /^\(\?([imsU]+)\)/.exec(translated);
  if (flags) translated = translated.slice(flags[0].length);
  try {
    new RegExp(translated, 'u');
    return undefined;
  } catch {
    try {
      // Without the u flag JavaScript is lenient about escapes RE2 also takes (\Q...\E aside).
      new RegExp(translated);
      return undefined;
    } catch (error) {
      return `${(error as Error).message.replace(/^Invalid regular expression: /, '')}; Istio uses RE2 syntax (https://github.com/google/re2/wiki/Syntax)`;
    }
  }
}
