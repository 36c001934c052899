/**
 * For InfoCard's `titleTypographyProps`: a card's title is a real heading (InfoCard renders a
 * plain span), so its section can be found by name with assistive technology.
 */
export const CARD_HEADING = { component: 'h2' };
