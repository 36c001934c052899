import { KubernetesObject } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { ApplyResult, describeObject } from './apply';
import { HelmOutcome, redactSecretManifests } from './helm';

/** An action's `ctx.output`, as far as `ChangeSet.writeTo` needs it (see `changeOutputs`). */
export type ChangeOutput = {
  (name: 'changed', value: boolean): void;
  (name: 'changes', value: string[]): void;
  (name: 'manifests', value: string): void;
};

/**
 * What an action changed, or in a dry run would change: one line per object or release, plus the
 * exact manifests of a dry run (Secret data redacted) for the task output.
 */
export class ChangeSet {
  readonly lines: string[] = [];
  private readonly manifests: string[] = [];

  get changed(): boolean {
    return this.lines.some(l => !l.endsWith(' unchanged'));
  }

  object(cluster: string, result: ApplyResult, dryRun?: boolean) {
    this.lines.push(
      `${cluster}: ${describeObject(result.object)} ${result.outcome}`,
    );
    if (dryRun && result.outcome !== 'unchanged')
      this.addManifest(cluster, result.object);
  }

  helm(
    cluster: string,
    release: string,
    outcome: HelmOutcome,
    manifests?: string,
  ) {
    this.lines.push(`${cluster}: helm release ${release} ${outcome}`);
    if (manifests)
      this.manifests.push(
        `# ${cluster}: helm release ${release}\n${manifests}`,
      );
  }

  note(cluster: string, line: string) {
    this.lines.push(`${cluster}: ${line}`);
  }

  addManifest(cluster: string, obj: KubernetesObject) {
    const { managedFields, ...metadata } = obj.metadata ?? {};
    const shown = redactSecretManifests(stringify({ ...obj, metadata }));
    this.manifests.push(`# ${cluster}\n${shown}`);
  }

  manifestText(): string {
    return this.manifests.join('---\n');
  }

  /** Writes the `changeOutputs` of an action: changed, changes and, in a dry run, manifests. */
  writeTo(output: ChangeOutput, dryRun: boolean) {
    output('changed', this.changed);
    output('changes', this.lines);
    if (dryRun) output('manifests', this.manifestText());
  }
}
