import { render, screen } from '@testing-library/react';
import App from './App';

describe('App', () => {
  it('starts at the sign-in page: guest or mesh admin', async () => {
    process.env = {
      NODE_ENV: 'test',
      APP_CONFIG: [
        {
          data: {
            // Nothing listens on port 1: no sign-in can reach a backend of this machine.
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
      await screen.findByRole(
        'button',
        { name: 'Enter as guest' },
        { timeout: 10_000 },
      ),
    ).toBeInTheDocument();
    expect(
      screen.getByRole('button', { name: 'Enter as mesh admin' }),
    ).toBeInTheDocument();
    expect(screen.getByText('Mesh admin')).toBeInTheDocument();
    unmount();
  });
});
