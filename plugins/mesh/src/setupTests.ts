import '@testing-library/jest-dom';
import { configure } from '@testing-library/react';

// The machine running the tests is shared: give rendering time under load before a find fails.
configure({ asyncUtilTimeout: 5000 });
jest.setTimeout(30_000);
