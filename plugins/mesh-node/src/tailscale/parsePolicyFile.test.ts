import { parsePolicyFile } from './parsePolicyFile';

describe('parsePolicyFile', () => {
  it('reads HuJSON: comments and trailing commas', () => {
    expect(
      parsePolicyFile(`// admin's notes
{
  "grants": [
    {"src": ["tag:k8s"], "dst": ["tag:k8s-operator"], "ip": ["tcp:443"],}, // why
  ],
}`),
    ).toEqual({
      grants: [
        { src: ['tag:k8s'], dst: ['tag:k8s-operator'], ip: ['tcp:443'] },
      ],
    });
  });

  it('says where a broken file breaks, without quoting it', () => {
    expect(() =>
      parsePolicyFile('{\n  "grants": [\n    {"src": secret}\n]}'),
    ).toThrow(/not valid HuJSON \(InvalidSymbol on line 3\)/);
    expect(() => parsePolicyFile('{"src": secret}')).toThrow(
      expect.objectContaining({
        message: expect.not.stringContaining('secret'),
      }),
    );
    expect(() => parsePolicyFile('')).toThrow(/not valid HuJSON/);
  });
});
