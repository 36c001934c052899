import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigReader } from '@backstage/config';
import { readClusterConfig } from './readClusterConfig';

const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const caData = Buffer.from(pem).toString('base64');

describe('readClusterConfig', () => {
  it('reads mesh.clusters with their auth and placement', () => {
    const clusters = readClusterConfig(
      new ConfigReader({
        mesh: {
          clusters: [
            {
              name: 'east',
              url: 'https://east.example.com/',
              serviceAccountToken: 't0k',
              caData,
              network: 'net-east',
              region: 'us-east',
              zone: 'us-east-1a',
            },
            {
              name: 'west',
              url: 'https://10.0.0.1:6443',
              skipTLSVerify: true,
              tlsServerName: 'kubernetes',
            },
          ],
        },
      }),
    );
    expect(clusters).toEqual([
      {
        name: 'east',
        url: 'https://east.example.com',
        token: 't0k',
        caPem: pem,
        tlsServerName: undefined,
        skipTLSVerify: false,
        network: 'net-east',
        region: 'us-east',
        zone: 'us-east-1a',
      },
      {
        name: 'west',
        url: 'https://10.0.0.1:6443',
        token: undefined,
        caPem: undefined,
        tlsServerName: 'kubernetes',
        skipTLSVerify: true,
        network: undefined,
        region: undefined,
        zone: undefined,
      },
    ]);
  });

  it('reads a CA from caFile', () => {
    const file = path.join(
      fs.mkdtempSync(path.join(os.tmpdir(), 'ca-')),
      'ca.pem',
    );
    fs.writeFileSync(file, pem);
    const [c] = readClusterConfig(
      new ConfigReader({
        mesh: { clusters: [{ name: 'a', url: 'https://a', caFile: file }] },
      }),
    );
    expect(c.caPem).toBe(pem);
  });

  it('names every invalid entry and field at once, without echoing the token', () => {
    const read = () =>
      readClusterConfig(
        new ConfigReader({
          mesh: {
            clusters: [
              {
                name: 'Bad_Name',
                url: 'ftp://x',
                serviceAccountToken: 'sekret-token-value',
              },
              {
                name: 'ok',
                url: 'not a url',
                caData: Buffer.from('nope').toString('base64'),
              },
              {
                name: 'net',
                url: 'https://n',
                network: '-bad-',
                authProvider: 'oidc',
              },
            ],
          },
        }),
      );
    expect(read).toThrow(
      /Invalid cluster "Bad_Name".*name:.*url: must be https, got ftp:/,
    );
    expect(read).toThrow(
      /Invalid cluster "ok".*url: not a valid URL; caData: is not base64 of a PEM/,
    );
    expect(read).toThrow(
      /Invalid cluster "net".*network: .*authProvider: only "serviceAccount"/,
    );
    expect(read).not.toThrow(/sekret-token-value/);
  });

  it('rejects a cluster listed twice', () => {
    expect(() =>
      readClusterConfig(
        new ConfigReader({
          mesh: {
            clusters: [
              { name: 'a', url: 'https://a' },
              { name: 'a', url: 'https://b' },
            ],
          },
        }),
      ),
    ).toThrow(/appears twice/);
  });

  it('takes Kubernetes plugin clusters only when asked, and mesh.clusters wins on a name clash', () => {
    const kubernetes = {
      clusterLocatorMethods: [
        { type: 'catalog' },
        {
          type: 'config',
          clusters: [
            {
              name: 'a',
              url: 'https://from-k8s-plugin',
              authProvider: 'serviceAccount',
            },
            { name: 'b', url: 'https://b' },
          ],
        },
      ],
    };
    const mesh = { clusters: [{ name: 'a', url: 'https://from-mesh' }] };
    expect(
      readClusterConfig(new ConfigReader({ mesh, kubernetes })).map(
        c => c.name,
      ),
    ).toEqual(['a']);
    const both = readClusterConfig(
      new ConfigReader({
        mesh: { ...mesh, useKubernetesPluginClusters: true },
        kubernetes,
      }),
    );
    expect(both.map(c => [c.name, c.url])).toEqual([
      ['a', 'https://from-mesh'],
      ['b', 'https://b'],
    ]);
  });
});
