import { InputError } from '@backstage/errors';
import { describeInputValue } from './inputErrors';
import { validateDnsLabel, validateDnsSubdomain } from './kubernetesNames';

/**
 * A Kubernetes Service, looked up by the same namespace and name in every cluster of the mesh.
 *
 * @public
 */
export interface MeshServiceRef {
  namespace: string;
  name: string;
}

/**
 * Checks a namespace (a DNS-1123 label).
 *
 * @public
 */
export function validateServiceNamespace(value: string): string | undefined {
  return validateDnsLabel(value);
}

/**
 * Checks a Service name (a DNS-1123 subdomain). Lenient on purpose: a name Kubernetes would refuse
 * for a Service is simply not found, rather than rejected with a different error.
 *
 * @public
 */
export function validateServiceName(value: string): string | undefined {
  return validateDnsSubdomain(value);
}

/**
 * Validates a service reference from route parameters.
 *
 * @throws InputError naming every invalid part.
 * @public
 */
export function parseServiceRef(
  namespace: string,
  name: string,
): MeshServiceRef {
  const problems: string[] = [];
  const namespaceProblem = validateServiceNamespace(namespace);
  if (namespaceProblem !== undefined) {
    problems.push(
      `namespace ${describeInputValue(namespace)} ${namespaceProblem}`,
    );
  }
  const nameProblem = validateServiceName(name);
  if (nameProblem !== undefined) {
    problems.push(`name ${describeInputValue(name)} ${nameProblem}`);
  }
  if (problems.length > 0) {
    throw new InputError(`Invalid service reference: ${problems.join('; ')}`);
  }
  return { namespace, name };
}
