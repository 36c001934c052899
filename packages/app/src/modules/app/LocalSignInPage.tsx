import {
  Content,
  Header,
  InfoCard,
  Page,
  ProxiedSignInPage,
  ProxiedSignInPageProps,
} from '@backstage/core-components';
import Button from '@material-ui/core/Button';
import Grid from '@material-ui/core/Grid';
import Typography from '@material-ui/core/Typography';
import { useState } from 'react';

type SignInPageProps = Omit<ProxiedSignInPageProps, 'provider'>;
type Identity = Parameters<SignInPageProps['onSignInSuccess']>[0];

/** The sign-in chosen last, so a reload signs in again by itself (as `auto` does for guest). */
const CHOICE_KEY = 'tailmesh:sign-in';

const CHOICES = [
  {
    provider: 'guest',
    title: 'Guest',
    button: 'Enter as guest',
    text: 'Reads the mesh: the mesh page, every service’s mesh card, the audit and the history. The Join and Leave templates refuse to run for a guest (the product’s permission policy).',
  },
  {
    provider: 'local-admin',
    title: 'Mesh admin',
    button: 'Enter as mesh admin',
    text: 'A member of mesh-admins: reads the mesh, and joins clusters to it and removes them with the Join and Leave templates.',
  },
] as const;

function storedChoice(): string | undefined {
  try {
    const choice = window.localStorage.getItem(CHOICE_KEY);
    return CHOICES.some(c => c.provider === choice) ? choice! : undefined;
  } catch {
    return undefined;
  }
}

/** The identity, with a sign-out that also forgets the choice: the next visit asks again. */
function forgettingChoice(identity: Identity): Identity {
  return {
    getProfileInfo: () => identity.getProfileInfo(),
    getBackstageIdentity: () => identity.getBackstageIdentity(),
    getCredentials: () => identity.getCredentials(),
    signOut: async () => {
      window.localStorage.removeItem(CHOICE_KEY);
      await identity.signOut();
    },
  };
}

/**
 * The local product's sign-in: guest or mesh admin, both without a password (the backend's guest
 * and local-admin providers, which only work in development). Each signs in through its provider's
 * refresh endpoint, as Backstage's ProxiedSignInPage does.
 */
export function LocalSignInPage(props: SignInPageProps) {
  const [choice, setChoice] = useState(storedChoice);
  if (choice) {
    return (
      <ProxiedSignInPage
        {...props}
        provider={choice}
        onSignInSuccess={identity =>
          props.onSignInSuccess(forgettingChoice(identity))
        }
      />
    );
  }
  const choose = (provider: string) => {
    window.localStorage.setItem(CHOICE_KEY, provider);
    setChoice(provider);
  };
  return (
    <Page themeId="home">
      <Header title="Tailmesh" subtitle="The local product: sign in as" />
      <Content>
        <Grid container spacing={3}>
          {CHOICES.map(c => (
            <Grid item xs={12} md={4} key={c.provider}>
              <InfoCard
                title={c.title}
                actions={
                  <Button
                    color="primary"
                    variant="outlined"
                    onClick={() => choose(c.provider)}
                  >
                    {c.button}
                  </Button>
                }
              >
                <Typography variant="body1">{c.text}</Typography>
              </InfoCard>
            </Grid>
          ))}
        </Grid>
      </Content>
    </Page>
  );
}
