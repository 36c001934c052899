import { TRAFFIC_CHECK_LABEL as PRODUCT_LABEL } from '@tailmesh/plugin-scaffolder-backend-module-mesh';
import { TRAFFIC_CHECK_LABEL, checkParameters, terminationMessage } from './checkJobRunner';
import type { PodObject } from './podSandbox';

const pod = (env: Record<string, string>): PodObject =>
  ({
    metadata: { name: 'check', namespace: 'default', uid: 'u' },
    spec: {
      containers: [{ name: 'client', image: 'curl', env: Object.entries(env).map(([name, value]) => ({ name, value })) }],
    },
  }) as PodObject;

describe('the traffic check Job runner', () => {
  it("watches the product's label (kwok's pod-complete stage skips the same)", () => {
    expect(TRAFFIC_CHECK_LABEL).toBe(PRODUCT_LABEL);
  });

  it('takes the URL, count and per-request limit from the client container, as the script does', () => {
    expect(
      checkParameters(
        pod({ CHECK_URL: 'http://echo.default.svc.cluster.local:8080/', CHECK_REQUESTS: '20', CHECK_TIMEOUT_SECONDS: '5' }),
      ),
    ).toEqual({ host: 'echo.default.svc.cluster.local', port: 8080, count: 20, timeoutSeconds: 5 });
    expect(checkParameters(pod({ CHECK_URL: 'http://echo.default.svc.cluster.local/', CHECK_REQUESTS: '1' })).port).toBe(80);
    expect(() => checkParameters(pod({ CHECK_URL: 'https://echo/', CHECK_REQUESTS: '1' }))).toThrow('is not an http URL');
    expect(() => checkParameters(pod({ CHECK_URL: 'http://echo/', CHECK_REQUESTS: 'many' }))).toThrow('is not a count');
  });

  it("writes the script's lines: status and the answering pod, 000 and nothing for a failed request", () => {
    expect(
      terminationMessage({
        requests: [
          { code: 200, hostname: 'echo-5d8f-x1y2z' },
          { code: 0, error: 'dial tcp: i/o timeout' },
          { code: 503, hostname: '' },
          { code: 200, hostname: 'a b/c' },
        ],
      }),
    ).toBe('200 echo-5d8f-x1y2z\n000\n503\n200 abc');
  });
});
