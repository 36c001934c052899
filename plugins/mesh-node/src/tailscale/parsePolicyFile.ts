import { InputError } from '@backstage/errors';
import { parse, ParseError, printParseErrorCode } from 'jsonc-parser';

/**
 * The tailnet policy file's HuJSON (JSON with comments and trailing commas) as a plain value, for
 * the audit. A file that does not parse is the admin's to fix: the error says where it broke and
 * quotes nothing of the file.
 *
 * @public
 */
export function parsePolicyFile(text: string): unknown {
  const errors: ParseError[] = [];
  const value: unknown = parse(text, errors, {
    allowTrailingComma: true,
    disallowComments: false,
    allowEmptyContent: false,
  });
  if (errors.length > 0) {
    const { error, offset } = errors[0];
    const line = text.slice(0, offset).split('\n').length;
    throw new InputError(
      `The tailnet policy file is not valid HuJSON (${printParseErrorCode(error)} on line ${line})`,
    );
  }
  return value;
}
