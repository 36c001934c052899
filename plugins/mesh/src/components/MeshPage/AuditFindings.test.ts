import { tailnetPolicyText } from './AuditFindings';

describe('tailnetPolicyText', () => {
  const fiveMinutesAgo = new Date(Date.now() - 5 * 60_000).toISOString();

  it('says when the policy file was read', () => {
    expect(tailnetPolicyText({ state: 'ok', lastReadAt: fiveMinutesAgo })).toBe(
      'Tailnet policy file: read 5 min ago.',
    );
  });

  it('says that grants are not checked without an OAuth client or before the first read', () => {
    expect(tailnetPolicyText({ state: 'not-configured' })).toMatch(
      /not checked/,
    );
    expect(tailnetPolicyText({ state: 'pending' })).toMatch(/not checked yet/);
  });

  it('says why the file cannot be read and which file the grants are judged on', () => {
    expect(
      tailnetPolicyText({
        state: 'error',
        lastReadAt: fiveMinutesAgo,
        error: 'the Tailscale API answered 401',
      }),
    ).toBe(
      'Tailnet policy file: cannot be read (the Tailscale API answered 401); grants judged on the file last read 5 min ago.',
    );
  });
});
