import { InputError } from '@backstage/errors';

/**
 * Returns a problem description for an invalid value, or undefined when it is valid.
 *
 * @public
 */
export type Validator = (value: string) => string | undefined;

const MAX_ECHOED_LENGTH = 64;

// Users paste credentials into the wrong field often enough that an error message must never
// repeat them: Tailscale keys, PEM blocks, JWTs and long mixed-case base64-like tokens.
const SECRET_LOOKALIKES = [
  /tskey-/i,
  /-----BEGIN /,
  /^eyJ[\w-]+\.[\w-]+\./,
  /^(?=.*[a-z])(?=.*[A-Z])(?=.*\d)[\w+/=-]{24,}$/,
];

/**
 * Describes a user-supplied value for an error message: quoted and truncated when it is a string,
 * by its type otherwise, and redacted when it looks like a credential.
 *
 * @public
 */
export function describeInputValue(value: unknown): string {
  if (typeof value === 'string') {
    if (SECRET_LOOKALIKES.some(pattern => pattern.test(value))) {
      return '<redacted: looks like a secret>';
    }
    const shown =
      value.length > MAX_ECHOED_LENGTH
        ? `${value.slice(0, MAX_ECHOED_LENGTH)}…`
        : value;
    return JSON.stringify(shown);
  }
  if (value === null || value === undefined) {
    return String(value);
  }
  if (typeof value === 'number' || typeof value === 'boolean') {
    return `${typeof value} ${String(value)}`;
  }
  return Array.isArray(value) ? 'an array' : `a value of type ${typeof value}`;
}

/**
 * Throws InputError unless `value` is a string that `validate` accepts; `what` names the value
 * in the message (for example "cluster name").
 *
 * @public
 */
export function assertValidInput(
  what: string,
  value: unknown,
  validate: Validator,
): asserts value is string {
  if (typeof value !== 'string') {
    throw new InputError(
      `Invalid ${what}: must be a string, got ${describeInputValue(value)}`,
    );
  }
  const problem = validate(value);
  if (problem !== undefined) {
    throw new InputError(
      `Invalid ${what} ${describeInputValue(value)}: ${problem}`,
    );
  }
}
