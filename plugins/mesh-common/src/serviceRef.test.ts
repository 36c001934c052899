import { InputError } from '@backstage/errors';
import {
  parseServiceRef,
  validateServiceName,
  validateServiceNamespace,
} from './serviceRef';

describe('parseServiceRef', () => {
  it('accepts a DNS label namespace and a DNS subdomain name', () => {
    expect(parseServiceRef('default', 'echo')).toEqual({
      namespace: 'default',
      name: 'echo',
    });
    expect(parseServiceRef('team-a', 'echo.v2')).toEqual({
      namespace: 'team-a',
      name: 'echo.v2',
    });
  });

  it('rejects a namespace with a dot, which a name may have', () => {
    expect(validateServiceNamespace('a.b')).toBeDefined();
    expect(validateServiceName('a.b')).toBeUndefined();
  });

  it.each([
    ['', 'echo', 'namespace "" must not be empty'],
    ['Default', 'echo', 'namespace "Default" must be lowercase'],
    ['default', '-echo', 'name "-echo" must not have a \'-\''],
    ['default', 'a/b', 'name "a/b" must contain only'],
    ['n'.repeat(64), 'echo', 'must be at most 63 characters'],
  ])('rejects %j/%j', (namespace, name, problem) => {
    expect(() => parseServiceRef(namespace, name)).toThrow(InputError);
    expect(() => parseServiceRef(namespace, name)).toThrow(problem);
  });

  it('reports both parts at once', () => {
    expect(() => parseServiceRef('A', 'B')).toThrow(
      'Invalid service reference: namespace "A" must be lowercase; name "B" must be lowercase',
    );
  });
});
