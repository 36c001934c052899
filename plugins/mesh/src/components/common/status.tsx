import {
  StatusError as BackstageStatusError,
  StatusOK as BackstageStatusOK,
  StatusPending as BackstageStatusPending,
  StatusWarning as BackstageStatusWarning,
} from '@backstage/core-components';
import { PropsWithChildren } from 'react';

/*
 * Backstage's status components hide themselves from assistive technology (they are meant as
 * icons next to text). Here the text inside them is the information, so it stays readable: the
 * label "Status ok" would otherwise replace it.
 */
const readable = { 'aria-hidden': false, 'aria-label': undefined };

export function StatusOK(props: PropsWithChildren<{}>) {
  return <BackstageStatusOK {...readable}>{props.children}</BackstageStatusOK>;
}

export function StatusWarning(props: PropsWithChildren<{}>) {
  return (
    <BackstageStatusWarning {...readable}>
      {props.children}
    </BackstageStatusWarning>
  );
}

export function StatusError(props: PropsWithChildren<{}>) {
  return (
    <BackstageStatusError {...readable}>{props.children}</BackstageStatusError>
  );
}

export function StatusPending(props: PropsWithChildren<{}>) {
  return (
    <BackstageStatusPending {...readable}>
      {props.children}
    </BackstageStatusPending>
  );
}
