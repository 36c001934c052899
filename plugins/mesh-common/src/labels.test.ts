import * as labels from './labels';

describe('labels', () => {
  it('uses qualified keys with a valid prefix and name', () => {
    const keys = Object.entries(labels)
      .filter(
        ([name]) => name.startsWith('LABEL_') || name.startsWith('ANNOTATION_'),
      )
      .map(([, key]) => key);
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) {
      expect(key).toMatch(
        /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/,
      );
    }
  });

  it('keeps Tailmesh keys under its prefix', () => {
    expect(labels.LABEL_MESH_ID).toBe('tailmesh.dev/mesh-id');
    expect(labels.LABEL_PEER).toBe('tailmesh.dev/peer');
  });
});
