import { describeClusterError } from './describeClusterError';

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
