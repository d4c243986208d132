// How `weft analyze` prints its messages: istioctl analyze's log lines
// (`Error [IST0101] (VirtualService shop/echo file.yaml) ...`), or the same as JSON
// or YAML (istioctl's fields), and what it says on stderr and exits with. Pure.
import { renderStructured } from './output-format.js';
import { atLeast, type AnalyzerMessage, type MessageLevel } from './mesh-analysis.js';

/** istioctl's exit code when analyzers found issues at or above the failure threshold. */
export const exitAnalyzerFoundIssues = 79;
/** istioctl's exit code when input files could not be parsed. */
export const exitFileParseError = 65;

const docsBase = 'https://istio.io/latest/docs/reference/config/analysis';
/** Weft's own codes (WEFTxxxx) have no page on Istio's site: they are documented in the repository. */
const documentationUrl = (code: string) =>
  code.startsWith('IST') ? `${docsBase}/${code.toLowerCase()}/?ref=weft-analyze` : `docs/analysis.md#${code.toLowerCase()}`;

const origin = (m: AnalyzerMessage) =>
  `${m.resource.kind} ${m.resource.namespace !== undefined ? `${m.resource.namespace}/` : ''}${m.resource.name}`;

export function renderLogLine(m: AnalyzerMessage): string {
  return `${m.level} [${m.code}] (${origin(m)}${m.origin ? ` ${m.origin}` : ''}) ${m.message}`;
}

/** The structured form, with istioctl's field names. */
export function analysisData(messages: readonly AnalyzerMessage[]): Array<Record<string, string>> {
  return messages.map((m) => ({
    code: m.code,
    name: m.name,
    level: m.level,
    message: m.message,
    origin: origin(m),
    reference: m.origin ?? '',
    documentationUrl: documentationUrl(m.code),
  }));
}

export interface AnalysisReport {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/**
 * What the command prints and exits with. `target` names what was analyzed
 * (`namespace: shop`, `all namespaces`, the files). As istioctl does, only the
 * log format sets a failing exit code.
 */
export function analysisReport(
  messages: readonly AnalyzerMessage[],
  options: {
    format: 'log' | 'json' | 'yaml';
    target: string;
    outputThreshold?: MessageLevel;
    failureThreshold?: MessageLevel;
    parseErrors?: readonly string[];
  },
): AnalysisReport {
  const shown = messages.filter((m) => atLeast(m.level, options.outputThreshold ?? 'Info'));
  const parseErrors = options.parseErrors ?? [];
  const errorLines = parseErrors.map((e) => `Error(s) adding files: ${e}\n`).join('');
  if (options.format !== 'log') {
    return { stdout: renderStructured(analysisData(shown), options.format), stderr: errorLines, exitCode: 0 };
  }
  const stdout = shown.map((m) => `${renderLogLine(m)}\n`).join('');
  if (messages.some((m) => atLeast(m.level, options.failureThreshold ?? 'Error'))) {
    return {
      stdout,
      stderr: `${errorLines}Error: Analyzers found issues when analyzing ${options.target}.\nSee ${docsBase} for more information about causes and resolutions.\n`,
      exitCode: exitAnalyzerFoundIssues,
    };
  }
  if (parseErrors.length > 0) {
    const files = parseErrors.length === 1 ? 'file' : 'files';
    return {
      stdout,
      stderr: `${errorLines}${shown.length === 0 ? `No validation issues found when analyzing ${options.target} (but ${parseErrors.length} ${files} could not be parsed).\n` : ''}`,
      exitCode: exitFileParseError,
    };
  }
  return { stdout, stderr: shown.length === 0 ? `\u2714 No validation issues found when analyzing ${options.target}.\n` : '', exitCode: 0 };
}
