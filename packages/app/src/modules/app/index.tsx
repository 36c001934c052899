import { SignInPage } from '@backstage/core-components';
import { createFrontendModule } from '@backstage/frontend-plugin-api';
import {
  NavContentBlueprint,
  SignInPageBlueprint,
} from '@backstage/plugin-app-react';
import { Sidebar } from './Sidebar';

/** Guest sign-in, as the backend's guest provider allows; signs in by itself once a session exists. */
const signInPage = SignInPageBlueprint.make({
  params: {
    loader: async () => props => (
      <SignInPage {...props} auto providers={['guest']} />
    ),
  },
});

const navContent = NavContentBlueprint.make({
  params: { component: Sidebar },
});

/** The app plugin's parts this product sets: its sign-in page and its sidebar. */
export const appModule = createFrontendModule({
  pluginId: 'app',
  extensions: [signInPage, navContent],
});
