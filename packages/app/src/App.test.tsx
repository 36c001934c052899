import { render, screen } from '@testing-library/react';
import App from './App';

describe('App', () => {
  it('starts at the guest sign-in page', async () => {
    process.env = {
      NODE_ENV: 'test',
      APP_CONFIG: [
        {
          data: {
            // Nothing listens on port 1: the automatic guest sign-in finds no session at once,
            // whatever runs on this machine's usual Backstage port.
            app: { title: 'Tailmesh', baseUrl: 'http://127.0.0.1:1' },
            backend: { baseUrl: 'http://127.0.0.1:1' },
          },
          context: 'test',
        },
        // The bundler injects APP_CONFIG as an array, not the string process.env declares.
      ] as unknown as string,
    };

    const { unmount } = render(App.createRoot());

    expect(
      await screen.findByRole('button', { name: 'Enter' }, { timeout: 10_000 }),
    ).toBeInTheDocument();
    expect(screen.getByText('Guest')).toBeInTheDocument();
    unmount();
  });
});
