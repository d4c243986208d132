import { re2Problem } from './regex.js';

describe('RE2 approximation', () => {
  it.each([
    '^/api/v[0-9]+/.*',
    '(?i)^/Reviews',
    '(?P<name>[a-z]+)',
    '\\Aabc\\z',
    '[(?=x)]',
    '\\d{1,3}',
    'a|b',
    '[[:alpha:]]+',
    '\\pL+',
    '\\123',
  ])('accepts %s', (re) => {
    expect(re2Problem(re)).toBeUndefined();
  });

  it.each([
    ['a(?=b)', 'lookahead and lookbehind are not supported by RE2'],
    ['a(?!b)', 'lookahead and lookbehind are not supported by RE2'],
    ['(?<=a)b', 'lookahead and lookbehind are not supported by RE2'],
    ['(?<!a)b', 'lookahead and lookbehind are not supported by RE2'],
    ['(a)\\1', 'backreference \\1 is not supported by RE2'],
    ['(?<n>a)\\k<n>', 'named backreferences are not supported by RE2'],
    ['a{1001}', "repeat count in {1001} exceeds RE2's limit of 1000"],
    ['[abc', 'missing closing ]'],
    ['x'.repeat(1025), 'regex is too large, max length allowed is 1024'],
  ])('refuses %s', (re, message) => {
    expect(re2Problem(re)).toBe(message);
  });

  it('refuses what does not compile, naming RE2', () => {
    expect(re2Problem('(abc')).toMatch(/RE2 syntax/);
    expect(re2Problem('*a')).toMatch(/RE2 syntax/);
  });
});
