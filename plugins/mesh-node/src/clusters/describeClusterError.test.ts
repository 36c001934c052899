import {
  describeClusterError,
  describeClusterErrorForReaders,
} from './describeClusterError';

const url = 'https://east:6443';
const withCode = (code: string) =>
  Object.assign(new Error('request failed'), { cause: { code } });

describe('describeClusterError', () => {
  it.each([
    [{ code: 401 }, 'unauthorized'],
    [{ code: 403 }, 'forbidden'],
    [withCode('DEPTH_ZERO_SELF_SIGNED_CERT'), 'tls'],
    [withCode('ERR_TLS_CERT_ALTNAME_INVALID'), 'tls'],
    [withCode('ETIMEDOUT'), 'timeout'],
    [Object.assign(new Error('x'), { name: 'TimeoutError' }), 'timeout'],
    [withCode('ENOTFOUND'), 'dns'],
    [
      Object.assign(new Error('x'), { code: 'ECONNREFUSED' }),
      'connection-refused',
    ],
    [{ code: 500 }, 'unknown'],
    [new Error('odd'), 'unknown'],
  ])('classifies %p as %s', (error, kind) => {
    const described = describeClusterError('east', url, error);
    expect(described.kind).toBe(kind);
    expect(described.message.startsWith('east: ')).toBe(true);
  });

  it('keeps only the first line of an unknown error', () => {
    const described = describeClusterError(
      'east',
      url,
      new Error('first line\nAuthorization: Bearer abc'),
    );
    expect(described.message).toBe('east: first line');
  });
});

describe('describeClusterErrorForReaders', () => {
  it('says the same without the cluster URL or any address', () => {
    const refused = Object.assign(
      new Error('connect ECONNREFUSED 10.0.0.7:6443'),
      {
        code: 'ECONNREFUSED',
      },
    );
    expect(describeClusterErrorForReaders('east', refused).message).toBe(
      'east: cannot connect to its API server (ECONNREFUSED); is the API server up?',
    );
    expect(
      describeClusterErrorForReaders(
        'east',
        Object.assign(new Error('x'), { code: 401 }),
      ).message,
    ).toBe(
      'east: the API server rejected the credentials (401 Unauthorized); check the service account token',
    );
    const odd = new Error(
      'request to https://k8s.internal.example.com:6443/api/v1/nodes failed, reason: proxy 10.1.2.3:3128 said no',
    );
    expect(describeClusterErrorForReaders('east', odd).message).toBe(
      'east: request to <address> failed, reason: proxy <address> said no',
    );
  });
});
