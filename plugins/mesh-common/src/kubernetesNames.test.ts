import {
  DNS1035_LABEL_PATTERN,
  DNS1123_LABEL_PATTERN,
  DNS1123_SUBDOMAIN_PATTERN,
  LABEL_VALUE_PATTERN,
  validateDnsLabel,
  validateDnsSubdomain,
  validateHelmReleaseName,
  validateLabelValue,
} from './kubernetesNames';

describe('validateDnsLabel', () => {
  it.each(['a', '0', 'cluster-1', '1-a', 'a'.repeat(63)])(
    'accepts %j',
    value => {
      expect(validateDnsLabel(value)).toBeUndefined();
      expect(DNS1123_LABEL_PATTERN.test(value)).toBe(true);
    },
  );

  it.each([
    ['', 'must not be empty'],
    ['a'.repeat(64), 'must be at most 63 characters (is 64)'],
    ['Cluster', 'must be lowercase'],
    ['-a', 'must start with a letter or digit'],
    ['a-', 'must end with a letter or digit'],
    ['a_b', "must contain only lowercase letters, digits and '-'"],
    ['a.b', "must contain only lowercase letters, digits and '-'"],
  ])('rejects %j: %s', (value, problem) => {
    expect(validateDnsLabel(value)).toContain(problem);
    expect(DNS1123_LABEL_PATTERN.test(value) && value.length <= 63).toBe(false);
  });

  it('reports every broken rule at once', () => {
    expect(validateDnsLabel('-Ab-')).toBe(
      'must be lowercase, must start with a letter or digit, must end with a letter or digit',
    );
  });

  it('honours maxLength and startWithLetter', () => {
    expect(validateDnsLabel('abcd', { maxLength: 3 })).toBe(
      'must be at most 3 characters (is 4)',
    );
    expect(validateDnsLabel('1a', { startWithLetter: true })).toBe(
      'must start with a letter',
    );
    expect(DNS1035_LABEL_PATTERN.test('1a')).toBe(false);
    expect(validateDnsLabel('a1', { startWithLetter: true })).toBeUndefined();
  });
});

describe('validateDnsSubdomain', () => {
  it.each(['a', 'a.b', 'istio-remote-secret-c1', 'x.y-z.0', 'a'.repeat(253)])(
    'accepts %j',
    value => {
      expect(validateDnsSubdomain(value)).toBeUndefined();
      expect(DNS1123_SUBDOMAIN_PATTERN.test(value)).toBe(true);
    },
  );

  it.each([
    ['', 'must not be empty'],
    ['a'.repeat(254), 'must be at most 253 characters (is 254)'],
    ['A.b', 'must be lowercase'],
    ['a_b', "must contain only lowercase letters, digits, '-' and '.'"],
    ['.a', 'must not start or end with a dot'],
    ['a.', 'must not start or end with a dot'],
    ['a..b', 'contain two dots in a row'],
    ['-a.b', "must not have a '-' next to a dot or at either end"],
    ['a-.b', "must not have a '-' next to a dot or at either end"],
    ['a.b-', "must not have a '-' next to a dot or at either end"],
  ])('rejects %j: %s', (value, problem) => {
    expect(validateDnsSubdomain(value)).toContain(problem);
  });

  it('honours maxLength', () => {
    expect(validateDnsSubdomain('a.b', 2)).toBe(
      'must be at most 2 characters (is 3)',
    );
  });
});

describe('validateLabelValue', () => {
  it.each(['a', 'A', 'eu-west-1', 'us_east.1', 'Net1', 'a'.repeat(63)])(
    'accepts %j',
    value => {
      expect(validateLabelValue(value)).toBeUndefined();
      expect(LABEL_VALUE_PATTERN.test(value)).toBe(true);
    },
  );

  it.each([
    ['', 'must not be empty'],
    ['a'.repeat(64), 'must be at most 63 characters (is 64)'],
    ['a b', "must contain only letters, digits, '-', '_' and '.'"],
    ['a/b', "must contain only letters, digits, '-', '_' and '.'"],
    ['-a', 'must start and end with a letter or digit'],
    ['a.', 'must start and end with a letter or digit'],
    ['_a', 'must start and end with a letter or digit'],
  ])('rejects %j: %s', (value, problem) => {
    expect(validateLabelValue(value)).toContain(problem);
  });
});

describe('validateHelmReleaseName', () => {
  it('allows 53 characters and no more', () => {
    expect(validateHelmReleaseName('a'.repeat(53))).toBeUndefined();
    expect(validateHelmReleaseName('a'.repeat(54))).toBe(
      'must be at most 53 characters (is 54)',
    );
  });

  it('rejects uppercase', () => {
    expect(validateHelmReleaseName('Istiod')).toBe('must be lowercase');
  });
});
