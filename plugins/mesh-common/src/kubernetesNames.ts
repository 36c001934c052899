/**
 * Longest DNS-1123 label Kubernetes accepts (namespaces, most object names, hostnames).
 *
 * @public
 */
export const DNS1123_LABEL_MAX_LENGTH = 63;

/**
 * A DNS-1123 label: lowercase alphanumerics and '-', starting and ending with an alphanumeric.
 *
 * @public
 */
export const DNS1123_LABEL_PATTERN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * A DNS-1035 label: a DNS-1123 label that starts with a letter, as Kubernetes requires of Service
 * names.
 *
 * @public
 */
export const DNS1035_LABEL_PATTERN = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

/**
 * Longest DNS-1123 subdomain Kubernetes accepts (Secret, ConfigMap and most object names).
 *
 * @public
 */
export const DNS1123_SUBDOMAIN_MAX_LENGTH = 253;

/**
 * A DNS-1123 subdomain: dot-separated DNS-1123 labels.
 *
 * @public
 */
export const DNS1123_SUBDOMAIN_PATTERN =
  /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * Longest Kubernetes label value.
 *
 * @public
 */
export const LABEL_VALUE_MAX_LENGTH = 63;

/**
 * A Kubernetes label value. Kubernetes also accepts the empty string; the validators here do not,
 * because every value Tailmesh stores in a label must identify something.
 *
 * @public
 */
export const LABEL_VALUE_PATTERN =
  /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/**
 * Longest Helm release name: Helm keeps 10 characters of the 63 for the names it derives.
 *
 * @public
 */
export const HELM_RELEASE_NAME_MAX_LENGTH = 53;

/**
 * Options of {@link validateDnsLabel}.
 *
 * @public
 */
export interface DnsLabelOptions {
  /** Defaults to {@link DNS1123_LABEL_MAX_LENGTH}. */
  maxLength?: number;
  /** Require a DNS-1035 label (first character a letter). */
  startWithLetter?: boolean;
}

function joinProblems(problems: string[]): string | undefined {
  return problems.length > 0 ? problems.join(', ') : undefined;
}

function lengthProblem(value: string, maxLength: number): string[] {
  return value.length > maxLength
    ? [`must be at most ${maxLength} characters (is ${value.length})`]
    : [];
}

// One message per broken rule, rather than a bare "does not match", so a form can tell the user
// what to change.
function labelShapeProblems(value: string, startWithLetter: boolean): string[] {
  const problems: string[] = [];
  if (/[A-Z]/.test(value)) {
    problems.push('must be lowercase');
  }
  if (/[^A-Za-z0-9-]/.test(value)) {
    problems.push("must contain only lowercase letters, digits and '-'");
  }
  if (startWithLetter && !/^[A-Za-z]/.test(value)) {
    problems.push('must start with a letter');
  } else if (!/^[A-Za-z0-9]/.test(value)) {
    problems.push('must start with a letter or digit');
  }
  if (!/[A-Za-z0-9]$/.test(value)) {
    problems.push('must end with a letter or digit');
  }
  return problems;
}

/**
 * Checks a DNS-1123 label (or, with `startWithLetter`, a DNS-1035 label).
 *
 * @public
 */
export function validateDnsLabel(
  value: string,
  options: DnsLabelOptions = {},
): string | undefined {
  if (value === '') {
    return 'must not be empty';
  }
  return joinProblems([
    ...lengthProblem(value, options.maxLength ?? DNS1123_LABEL_MAX_LENGTH),
    ...labelShapeProblems(value, options.startWithLetter ?? false),
  ]);
}

/**
 * Checks a DNS-1123 subdomain of at most `maxLength` characters (default 253).
 *
 * @public
 */
export function validateDnsSubdomain(
  value: string,
  maxLength: number = DNS1123_SUBDOMAIN_MAX_LENGTH,
): string | undefined {
  if (value === '') {
    return 'must not be empty';
  }
  const problems = lengthProblem(value, maxLength);
  if (/[A-Z]/.test(value)) {
    problems.push('must be lowercase');
  }
  if (/[^A-Za-z0-9.-]/.test(value)) {
    problems.push("must contain only lowercase letters, digits, '-' and '.'");
  }
  const labels = value.split('.');
  if (labels.some(label => label === '')) {
    problems.push(
      'must not start or end with a dot or contain two dots in a row',
    );
  }
  if (labels.some(label => /^-|-$/.test(label))) {
    problems.push("must not have a '-' next to a dot or at either end");
  }
  return joinProblems(problems);
}

/**
 * Checks a non-empty Kubernetes label value.
 *
 * @public
 */
export function validateLabelValue(value: string): string | undefined {
  if (value === '') {
    return 'must not be empty';
  }
  const problems = lengthProblem(value, LABEL_VALUE_MAX_LENGTH);
  if (/[^A-Za-z0-9_.-]/.test(value)) {
    problems.push("must contain only letters, digits, '-', '_' and '.'");
  }
  if (!/^[A-Za-z0-9]/.test(value) || !/[A-Za-z0-9]$/.test(value)) {
    problems.push('must start and end with a letter or digit');
  }
  return joinProblems(problems);
}

/**
 * Checks a Helm release name (a DNS-1123 subdomain of at most 53 characters).
 *
 * @public
 */
export function validateHelmReleaseName(value: string): string | undefined {
  return validateDnsSubdomain(value, HELM_RELEASE_NAME_MAX_LENGTH);
}
