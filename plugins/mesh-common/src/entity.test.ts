import { Entity } from '@backstage/catalog-model';
import { getMeshServiceRef, isMeshAvailable } from './entity';

function entityWith(annotations?: Record<string, string>): Entity {
  return {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Component',
    metadata: { name: 'echo', annotations },
  };
}

describe('getMeshServiceRef', () => {
  it('reads tailmesh.dev/service', () => {
    const entity = entityWith({ 'tailmesh.dev/service': 'shop/echo' });
    expect(getMeshServiceRef(entity)).toEqual({
      namespace: 'shop',
      name: 'echo',
    });
    expect(isMeshAvailable(entity)).toBe(true);
  });

  it('prefers tailmesh.dev/service over the Kubernetes annotations', () => {
    const entity = entityWith({
      'tailmesh.dev/service': 'shop/echo',
      'backstage.io/kubernetes-id': 'other',
      'backstage.io/kubernetes-namespace': 'elsewhere',
    });
    expect(getMeshServiceRef(entity)).toEqual({
      namespace: 'shop',
      name: 'echo',
    });
  });

  it('trims surrounding whitespace', () => {
    expect(
      getMeshServiceRef(entityWith({ 'tailmesh.dev/service': ' shop/echo\n' })),
    ).toEqual({ namespace: 'shop', name: 'echo' });
  });

  it.each([
    'echo',
    'shop/',
    '/echo',
    'a/b/c',
    'Shop/echo',
    'shop/Echo',
    'shop.x/echo',
    '',
  ])('rejects the malformed value %j without falling back', value => {
    const entity = entityWith({
      'tailmesh.dev/service': value,
      'backstage.io/kubernetes-id': 'echo',
    });
    expect(getMeshServiceRef(entity)).toBeUndefined();
    expect(isMeshAvailable(entity)).toBe(false);
  });

  it('falls back to backstage.io/kubernetes-id in the default namespace', () => {
    const entity = entityWith({ 'backstage.io/kubernetes-id': 'echo' });
    expect(getMeshServiceRef(entity)).toEqual({
      namespace: 'default',
      name: 'echo',
    });
    expect(isMeshAvailable(entity)).toBe(true);
  });

  it('uses backstage.io/kubernetes-namespace with the fallback', () => {
    const entity = entityWith({
      'backstage.io/kubernetes-id': 'echo',
      'backstage.io/kubernetes-namespace': 'shop',
    });
    expect(getMeshServiceRef(entity)).toEqual({
      namespace: 'shop',
      name: 'echo',
    });
  });

  it('rejects a kubernetes-id that is no Service name', () => {
    const entity = entityWith({ 'backstage.io/kubernetes-id': 'Dice_Roller' });
    expect(getMeshServiceRef(entity)).toBeUndefined();
    expect(isMeshAvailable(entity)).toBe(false);
  });

  it('rejects an invalid kubernetes-namespace', () => {
    const entity = entityWith({
      'backstage.io/kubernetes-id': 'echo',
      'backstage.io/kubernetes-namespace': 'Shop',
    });
    expect(getMeshServiceRef(entity)).toBeUndefined();
  });

  it('ignores kubernetes-namespace alone', () => {
    const entity = entityWith({ 'backstage.io/kubernetes-namespace': 'shop' });
    expect(getMeshServiceRef(entity)).toBeUndefined();
  });

  it('returns undefined without annotations', () => {
    expect(getMeshServiceRef(entityWith())).toBeUndefined();
    expect(getMeshServiceRef(entityWith({}))).toBeUndefined();
    expect(isMeshAvailable(entityWith())).toBe(false);
  });
});
