import { ResponseError } from '@backstage/errors';
import { errorText } from './errorText';

describe('errorText', () => {
  it("uses a backend error's own message and status", async () => {
    const error = await ResponseError.fromResponse(
      new Response(
        JSON.stringify({
          error: {
            name: 'NotAllowedError',
            message: 'Not allowed: mesh.status.read',
          },
          request: { method: 'GET', url: '/api/mesh/clusters' },
          response: { statusCode: 403 },
        }),
        { status: 403, headers: { 'Content-Type': 'application/json' } },
      ),
    );
    expect(errorText(error)).toBe('Not allowed: mesh.status.read (HTTP 403)');
  });

  it('uses the message of any other error', () => {
    expect(errorText(new TypeError('Failed to fetch'))).toBe('Failed to fetch');
    expect(errorText('plain')).toBe('plain');
  });
});
